/**
 * The registry door: a firewalling, caching proxy for npm (`/npm/`) and PyPI (`/pypi/`) that
 * applies core/policy (minimum age, known vulnerabilities, allow and deny lists) before it
 * serves a version, verifies every downloaded file against its published digest, and caches
 * filtered, pre-compressed metadata.
 * @module
 */
import type { App, ConfigSection, CoreServices } from '#core/app';
import type { RegistryConfig as Config } from './config.ts';
import { createRegistryDoor as create } from './door.ts';

/** The `registry` configuration section (uplinks, cache, policy, vulndb). */
export { registryConfigSchema, uplinkSchema } from './config.ts';

/** The parsed `registry` section. */
export type RegistryConfig = Config;

/** What `POST /api/registry/policy/test` answers. */
export type { PolicyTestAnswer } from './admin.ts';

/** The registry door with access to its vulnerability database and policy (for the CLI). */
export type RegistryDoor = ReturnType<typeof create>;

/**
 * Creates the registry door. `provision` runs the vulndb migrations, builds the policy engine
 * (rebuilt atomically on reload), and registers `/npm/`, `/pypi/` and `/api/registry/*` on
 * the main HTTP server.
 */
export function createRegistryDoor(core: CoreServices, config: ConfigSection<Config>): App & RegistryDoor {
  return create(core, config);
}
