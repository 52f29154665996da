import { ConfigValidationError, type Infer, issueOf, object, string } from '#core/config';
import { auditConfigSchema } from '#core/audit';
import { authConfigSchema } from '#core/auth';
import { cacheConfigSchema } from '#core/cache';
import { httpConfigSchema, validateHttpConfig } from '#core/http';
import { logConfigSchema } from '#core/log';
import { buildRuleTable } from '#core/policy';
import { rbacConfigSchema } from '#core/rbac';
import { storageConfigSchema } from '#core/storage';
import { artifactsConfigSchema } from '../doors/artifacts/config.ts';
import { edgeConfigSchema } from '../doors/edge/config.ts';
import { kvConfigSchema } from '../doors/kv/config.ts';
import { registryConfigSchema } from '../doors/registry/config.ts';

/**
 * The whole configuration document: one section per core module and per door. Each owner
 * defines its section's schema; this file only composes them (docs/config.md is generated from it).
 */
export const gatehouseConfigSchema = object(
  {
    home: string(
      {
        description: 'Data folder for the SQLite database, keys, certificates, blobs and the audit log',
        env: 'GATEHOUSE_HOME',
      },
      { default: '.gatehouse', minLength: 1 },
    ),
    log: logConfigSchema,
    server: httpConfigSchema,
    storage: storageConfigSchema,
    cache: cacheConfigSchema,
    audit: auditConfigSchema,
    auth: authConfigSchema,
    rbac: rbacConfigSchema,
    registry: registryConfigSchema,
    artifacts: artifactsConfigSchema,
    kv: kvConfigSchema,
    edge: edgeConfigSchema,
  },
  'Gatehouse configuration',
);

export type GatehouseConfig = Infer<typeof gatehouseConfigSchema>;

/**
 * Checks that span keys (TLS files set together, client certificates need a CA, the registry
 * policy compiles), which the per-key schema cannot express. `config validate` and `serve` both run it, so a document
 * `serve` refuses is never reported valid, and `serve` refuses before touching the data folder.
 */
export function checkGatehouseConfig(
  config: GatehouseConfig,
  origin: string,
  options: { readonly policy?: boolean } = {},
): void {
  const checks: [path: string, check: () => unknown][] = [['', () => validateHttpConfig(config.server)]];
  // The registry door compiles its policy when it starts (list ranges in every ecosystem,
  // unique rule ids, known exclusions, expiry dates); the same compilation here refuses such a
  // document before anything is opened, in `config validate` and at start. A reload leaves it
  // out (`policy: false`): the registry's policy service vets the new policy itself, at the same
  // key, and keeps the engine it compiled.
  if (config.registry.enabled && options.policy !== false)
    checks.push(['registry.policy', () => buildRuleTable(config.registry.policy)]);
  const issues = [];
  for (const [path, check] of checks) {
    try {
      check();
    } catch (error) {
      if (!(error instanceof RangeError || error instanceof TypeError)) throw error;
      issues.push(issueOf(error, path));
    }
  }
  if (issues.length > 0) throw new ConfigValidationError(origin, issues);
}
