/**
 * core/config: the schema language every module and door uses for its section, the loader
 * (YAML, GATEHOUSE_* overrides, flags), the reloadable store and the docs generator.
 * @module
 */
export { type KeyDescription, describeSchema, redact } from './describe.ts';
export { processEnvironment, type TestServices, testServices } from './environment.ts';
export {
  applyEnvironment,
  ConfigValidationError,
  type Environment,
  describeIssue,
  formatIssues,
  type Loaded,
  type LoadOptions,
  loadConfig,
  parseYaml,
  validateRaw,
  walkSchema,
} from './load.ts';
export {
  array,
  boolean,
  type ConfigIssue,
  duration,
  EnvText,
  envName,
  type FieldMeta,
  type Infer,
  INVALID,
  integer,
  number,
  object,
  oneOf,
  optional,
  type ParseContext,
  type Parsed,
  record,
  type Schema,
  type SchemaKind,
  type SchemaProblem,
  size,
  string,
  withProblems,
} from './schema.ts';
export {
  type ConfigListener,
  ConfigStore,
  type ConfigStoreOptions,
  issueOf,
  mergeDynamic,
  type ReloadOutcome,
} from './store.ts';
/** Folder watches that survive saves by rename, and one-at-a-time reloads that never join a stale read. */
export { type FileWatch, type FileWatchOptions, serialRuns, watchFiles } from './watch.ts';
export { formatDuration, formatSize, parseDuration, parseSize } from './units.ts';
export type { ConfigSection } from './section.ts';
