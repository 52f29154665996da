import type { AuditLog } from '#core/audit';
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
export function registerConfigRoutes(
  http: HttpServer,
  store: ConfigStore<GatehouseConfig>,
  audit?: AuditLog,
): void {
  http.app.get(
    '/api/config',
    { preHandler: http.requirePermission('config:read', () => ({ type: 'config' })) },
    async () => redact(store.schema as Schema<unknown>, store.current),
  );
  // Who asked for a reload, from where, under the client's request id: the store's listeners
  // audit what it did as the system, as for SIGHUP and the file watch, and know nothing of a caller.
  const reload = async (principal: string, requestId: string, clientIp: string) => {
    const outcome = await store.reload();
    await audit?.record({
      actor: principal,
      action: 'config.reload.request',
      resource: `config:${store.file ?? 'environment'}`,
      decision: outcome.ok ? 'allow' : 'error',
      requestId,
      clientIp,
      ...(outcome.ok
        ? { details: { changed: outcome.changed, restartNeeded: outcome.restartNeeded } }
        : { reason: outcome.error.message }),
    });
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
  };
  http.app.post(
    '/api/config/reload',
    { preHandler: http.requirePermission('config:reload', () => ({ type: 'config' })) },
    (request) => reload(request.principal?.id ?? 'anonymous', request.id, request.clientIp),
  );
}
