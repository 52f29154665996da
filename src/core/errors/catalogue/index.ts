import type { ErrorDefinition } from '../definition.ts';
import { ARTIFACTS_ERRORS } from './artifacts.ts';
import { CORE_ERRORS } from './core.ts';
import { EDGE_ERRORS } from './edge.ts';
import { KV_ERRORS } from './kv.ts';
import { POLICY_ERRORS } from './policy.ts';
import { REGISTRY_ERRORS } from './registry.ts';
import { VULNDB_ERRORS } from './vulndb.ts';

/**
 * Every error code Gatehouse can answer with. Each area keeps its codes in its own file so
 * that areas do not edit one list; codes must be unique (checked by a test).
 */
export const CATALOGUE: readonly ErrorDefinition[] = [
  ...CORE_ERRORS,
  ...POLICY_ERRORS,
  ...VULNDB_ERRORS,
  ...REGISTRY_ERRORS,
  ...ARTIFACTS_ERRORS,
  ...KV_ERRORS,
  ...EDGE_ERRORS,
];
