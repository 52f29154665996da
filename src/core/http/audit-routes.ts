import type { FastifyRequest } from 'fastify';
import { GatewayError } from '#core/errors';
import type { HttpServer } from './port.ts';
import type { AuditDecision, AuditLog, AuditQuery } from '#core/audit';

const QUERY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    actor: { type: 'string', maxLength: 512 },
    action: { type: 'string', maxLength: 256 },
    resource: { type: 'string', maxLength: 1024 },
    decision: { type: 'string', enum: ['allow', 'deny', 'error', 'info'] },
    from: { type: 'string', maxLength: 64 },
    to: { type: 'string', maxLength: 64 },
    limit: { type: 'integer', minimum: 1, maximum: 10_000 },
    cursor: { type: 'string', maxLength: 256 },
  },
} as const;

type QueryString = Partial<Record<'actor' | 'action' | 'resource' | 'from' | 'to' | 'cursor', string>> & {
  decision?: AuditDecision;
  limit?: number;
};

function toQuery(request: FastifyRequest): AuditQuery {
  const q = request.query as QueryString;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(q)) if (value !== undefined) out[key] = value;
  return out as AuditQuery;
}

/**
 * `GET /api/audit-logs` (filtered, newest first, keyset paged) and `GET /api/audit-logs/verify`,
 * both for principals with `audit:read` (auditor and admin).
 */
export function registerAuditRoutes(http: HttpServer, audit: AuditLog): void {
  const canRead = http.requirePermission('audit:read', () => ({ type: 'audit' }));
  http.app.get(
    '/api/audit-logs',
    { preHandler: canRead, schema: { querystring: QUERY_SCHEMA } },
    async (request) => audit.query(toQuery(request)),
  );
  http.app.get('/api/audit-logs/verify', { preHandler: canRead }, async () => {
    const result = await audit.verify();
    if (!result.ok) {
      throw new GatewayError('GW_ERR_AUDIT_CHAIN_BROKEN', {
        message: `The audit chain is broken at record ${result.firstBad?.seq ?? '?'}: ${result.firstBad?.problem ?? 'unknown'}`,
        details: { checked: result.checked, firstBad: result.firstBad },
      });
    }
    return result;
  });
}
