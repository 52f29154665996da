import { createPrivateKey, createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Action } from '#core/rbac';
import { GatewayError } from '#core/errors';
import { openPlaintext } from './download.ts';
import { auditResource, itemGuards, itemOf, type RouteDeps } from './routes.ts';
import { rotateKeys, setVerdict, toView } from './service.ts';
import { bundleDigest, keyHint, parseBundle, signStream } from './sign/bundle.ts';
import { signaturesOf } from './sign/service.ts';
import type { ArtifactTables } from './store/schema.ts';

const actorOf = (request: FastifyRequest) => request.principal?.id ?? 'anonymous';

/**
 * Signatures kept per artifact (its digest in its repository). Every trust check reads and
 * verifies them all, and a refusal names each one's reason: without a bound a publisher could
 * make every download's check, its audit record and its error answer grow without end.
 */
export const MAX_SIGNATURES = 64;

/** Registers scan, verdict, signature, verification and key-rotation routes. */
export function registerExtraRoutes(
  app: FastifyInstance,
  deps: RouteDeps,
  signingKey: () => KeyObject | undefined,
): void {
  const { core, ctx } = deps;
  const pre = (action: Action) => itemGuards(core, ctx, action);
  const db = () => ctx.db.kysely<ArtifactTables>();

  app.get(
    '/api/artifacts/:id/scan-results',
    { preHandler: pre('artifacts:read') },
    async (request, reply) => {
      const item = itemOf(request);
      const row = await db()
        .selectFrom('artifacts_scan_reports')
        .selectAll()
        .where('artifact_id', '=', item.id)
        .executeTakeFirst();
      if (row === undefined) {
        throw new GatewayError('GW_ERR_ARTIFACTS_SCAN_PENDING', {
          message: `Artifact "${item.id}" has no scan result yet`,
          details: { scanState: item.scan_state },
        });
      }
      const format = (request.query as { format?: string }).format;
      if (format === 'cyclonedx')
        return reply.header('content-type', 'application/vnd.cyclonedx+json; version=1.5').send(row.sbom);
      return reply.header('content-type', 'application/json').send(row.report);
    },
  );

  app.post('/api/artifacts/:id/scan', { preHandler: pre('artifacts:scan') }, async (request, reply) => {
    const item = itemOf(request);
    await deps.queue.enqueue(item.id);
    await ctx.audit({
      actor: actorOf(request),
      action: 'artifacts.scan.request',
      resource: auditResource(item),
      decision: 'allow',
      clientIp: request.clientIp,
    });
    return reply.code(202).send({ id: item.id, scanState: 'pending', status: item.status });
  });

  app.post('/api/artifacts/:id/verdict', { preHandler: pre('artifacts:override') }, async (request) => {
    const item = itemOf(request);
    const body = (request.body ?? {}) as { status?: unknown; reason?: unknown };
    const reason = typeof body.reason === 'string' ? body.reason.trim() : '';
    if (
      (body.status !== 'approved' && body.status !== 'blocked' && body.status !== 'policy') ||
      reason === '' ||
      reason.length > 1000
    ) {
      throw new GatewayError('GW_ERR_ARTIFACTS_OVERRIDE_INVALID', {
        message: 'Override needs "status" of "approved", "blocked" or "policy" and a "reason"',
      });
    }
    const to = body.status;
    const statusReason = `Override by ${request.principal?.name ?? 'admin'}: ${reason}`;
    if (to === 'policy') {
      // Back to the policy: the override ends, the verdict stays until a new scan decides it.
      await db()
        .updateTable('artifacts_items')
        .set({ status_by: 'policy' })
        .where('id', '=', item.id)
        .execute();
      await deps.queue.enqueue(item.id);
    } else await setVerdict(ctx, item.id, { status: to, reason: statusReason, by: 'override' });
    await ctx.audit({
      actor: actorOf(request),
      action: 'artifacts.verdict.override',
      resource: auditResource(item),
      decision: 'allow',
      reason,
      clientIp: request.clientIp,
      details: { from: item.status, to },
    });
    return toView(
      to === 'policy'
        ? { ...item, status_by: 'policy' }
        : { ...item, status: to, status_reason: statusReason, status_by: 'override' },
    );
  });

  app.get('/api/artifacts/:id/signatures', { preHandler: pre('artifacts:read') }, async (request) => {
    const item = itemOf(request);
    const rows = await signaturesOf(ctx, item.digest, item.repository)
      .selectAll()
      .orderBy('created_at')
      .execute();
    return {
      signatures: rows.map((r) => ({
        id: r.id,
        kind: r.kind,
        identity: r.identity,
        createdBy: r.created_by,
        createdAt: new Date(Number(r.created_at)).toISOString(),
        bundle: JSON.parse(r.bundle) as unknown,
      })),
    };
  });

  app.post('/api/artifacts/:id/signatures', { preHandler: pre('artifacts:sign') }, async (request, reply) => {
    const item = itemOf(request);
    const body = (request.body ?? {}) as { sign?: unknown; bundle?: unknown };
    let bundle;
    if (body.sign === true) {
      const key = signingKey();
      if (key === undefined)
        throw new GatewayError('GW_ERR_ARTIFACTS_SIGNING_UNAVAILABLE', {
          message: 'No server signing key is configured',
        });
      bundle = await signStream(await openPlaintext(ctx, item), key, { hint: keyHint(createPublicKey(key)) });
    } else {
      bundle = parseBundle(body.bundle ?? body);
    }
    if (bundleDigest(bundle) !== item.digest) {
      await ctx.audit({
        actor: actorOf(request),
        action: 'artifacts.signature.add',
        resource: auditResource(item),
        decision: 'deny',
        reason: 'Signature is over a different digest',
        clientIp: request.clientIp,
      });
      throw new GatewayError('GW_ERR_ARTIFACTS_SIGNATURE_INVALID', {
        message: `Signature is over "${bundleDigest(bundle)}", not the artifact's "${item.digest}"`,
      });
    }
    const stored = await signaturesOf(ctx, item.digest, item.repository)
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .executeTakeFirst();
    if (Number(stored?.n ?? 0) >= MAX_SIGNATURES) {
      throw new GatewayError('GW_ERR_ARTIFACTS_QUOTA_EXCEEDED', {
        message: `Artifact "${item.id}" already has ${MAX_SIGNATURES} signatures`,
        details: { limit: MAX_SIGNATURES },
      });
    }
    const cert = bundle.verificationMaterial.certificate !== undefined;
    const identity = cert ? 'x509' : (bundle.verificationMaterial.publicKey?.hint ?? '');
    const id = randomUUID();
    await db()
      .insertInto('artifacts_signatures')
      .values({
        id,
        digest: item.digest,
        repository: item.repository,
        kind: cert ? 'x509' : 'key',
        bundle: JSON.stringify(bundle),
        identity,
        created_by: actorOf(request),
        created_at: ctx.clock.now(),
      })
      .execute();
    deps.trust.forget(item.digest);
    await ctx.audit({
      actor: actorOf(request),
      action: 'artifacts.signature.add',
      resource: auditResource(item),
      decision: 'allow',
      clientIp: request.clientIp,
      details: { kind: cert ? 'x509' : 'key', identity },
    });
    return reply.code(201).send({ id, bundle });
  });

  app.get('/api/artifacts/:id/verification', { preHandler: pre('artifacts:read') }, async (request) => {
    const item = itemOf(request);
    const verdict = await deps.trust.check(item, actorOf(request));
    return {
      id: item.id,
      sha256: item.digest,
      ...verdict,
      validUntil: new Date(verdict.validUntil).toISOString(),
    };
  });

  app.post(
    '/api/artifacts/-/rotate-keys',
    {
      preHandler: core.http.requirePermission('artifacts:override', () => ({
        type: 'artifact',
        namespace: '*',
      })),
    },
    async (request) => {
      const result = await rotateKeys(ctx);
      await ctx.audit({
        actor: actorOf(request),
        action: 'artifacts.keys.rotate',
        resource: `key:${ctx.keyring.activeKeyId}`,
        decision: 'allow',
        details: result,
      });
      return { activeKeyId: ctx.keyring.activeKeyId, ...result };
    },
  );
}

/** Loads the server signing key (PEM PKCS#8 P-256), or undefined when none is configured. */
export function loadSigningKey(pem: string | undefined): KeyObject | undefined {
  if (pem === undefined || pem === '') return undefined;
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new RangeError('artifacts.signing.keyFile must hold an ECDSA P-256 key');
  return key;
}
