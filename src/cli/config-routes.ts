import { type ConfigStore, ConfigValidationError, redact, type Schema } from '#core/config';
import { GatewayError } from '#core/errors';
import type { HttpServer } from '#core/http';
import type { GatehouseConfig } from './config-schema.ts';

/**
 * `GET /api/config` (effective configuration, secrets redacted; `config:read`) and
 * `POST /api/config/reload` (validate the whole document, swap the dynamic sections;
 * `config:reload`). A reload that fails keeps the last good configuration and answers
 * GW_ERR_CONFIG_INVALID listing every problem; the store's listeners log and audit it.
 */
export function registerConfigRoutes(http: HttpServer, store: ConfigStore<GatehouseConfig>): void {
  http.app.get(
    '/api/config',
    { preHandler: http.requirePermission('config:read', () => ({ type: 'config' })) },
    async () => redact(store.schema as Schema<unknown>, store.current),
  );
  http.app.post(
    '/api/config/reload',
    { preHandler: http.requirePermission('config:reload', () => ({ type: 'config' })) },
    async () => {
      const outcome = await store.reload();
      if (outcome.ok) return { ok: true, changed: outcome.changed, restartNeeded: outcome.restartNeeded };
      const issues = outcome.error instanceof ConfigValidationError ? outcome.error.issues : [];
      throw new GatewayError('GW_ERR_CONFIG_INVALID', {
        message: `The new configuration is not valid; the last good one stays in force (${issues.length} problem(s))`,
        details: {
          errors: issues.map((i) => ({
            path: i.path,
            value: i.value,
            expected: i.expected,
            source: i.source,
          })),
        },
        cause: outcome.error,
      });
    },
  );
}
