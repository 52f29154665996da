import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from '#core/errors';
import { parseSemver } from '#core/vulndb';
import { identityOf } from '../cache/entry.ts';
import { parseIntegrity } from '../cache/verify.ts';
import {
  callerOf,
  headerText,
  prepareError,
  type RegistryContext,
  requireAllowed,
  sendEntry,
} from '../context.ts';
import { sendVerifiedFile } from '../files.ts';
import { checkNpmName, entryNamed, npmBaseName } from '../names.ts';
import { NpmMetadata, type PackumentVariant } from '../npm/metadata.ts';
import { PackumentProcessor } from '../npm/packument-processor.ts';
import type { UplinkClient } from '../uplink/client.ts';
import { UplinkSelector } from '../uplink/select.ts';
import type { EcosystemHandler } from './handler.ts';

const ABBREVIATED = 'application/vnd.npm.install-v1+json';

/** npm clients ask for the abbreviated form with this media type (registry API, "corgi" docs). */
const variantOf = (request: FastifyRequest): PackumentVariant =>
  (request.headers.accept ?? '').includes(ABBREVIATED) ? 'abbreviated' : 'full';

function nameFrom(params: { scope?: string; name: string }): string {
  return checkNpmName(params.scope === undefined ? params.name : `@${params.scope}/${params.name}`);
}

/**
 * Sends an error the way the npm CLI displays it: the `npm-notice` header (printed as
 * `npm notice …`) and a JSON body whose `error` ends up in npm's error message.
 */
function sendNpmError(
  ctx: RegistryContext,
  request: FastifyRequest,
  reply: FastifyReply,
  error: unknown,
): FastifyReply {
  const e = prepareError(ctx, request, reply, error);
  reply.header('npm-notice', headerText(e.message));
  const status = e.code === 'GW_ERR_INTERNAL' ? 500 : e.httpStatus;
  return reply
    .code(status)
    .type('application/json')
    .send({ error: e.message, code: e.code, errorId: e.errorId, details: e.details });
}

/**
 * Route options refusing an endpoint before its body is read (npm sends audit reports gzipped
 * and large; a publish carries the tarball): nothing is parsed, any body gets the same answer.
 * 405, not 501: npm retries every 5xx for over a minute before it prints the message.
 */
const unsupported = (message: string, allow: string) => ({
  onRequest: async () => {
    throw new GatewayError('GW_ERR_REGISTRY_UNSUPPORTED', { message, httpStatus: 405, headers: { allow } });
  },
});
const answered = async () => undefined;

/** The npm ecosystem: packuments, tarballs, ping, search pass-through. */
export function createNpmHandler(ctx: RegistryContext, uplinks: readonly UplinkClient[]): EcosystemHandler {
  const selector = new UplinkSelector(uplinks, 'npm');
  const cache = ctx.config().cache;
  const processor = new PackumentProcessor({ threshold: cache.workerThreshold, workers: cache.workers });
  processor.warm();
  const metadata = new NpmMetadata(ctx, selector, processor);
  const registryOf = new WeakMap<FastifyRequest, string>();

  const packument = async (
    request: FastifyRequest<{ Params: { scope?: string; name: string } }>,
    reply: FastifyReply,
  ) => {
    const name = nameFrom(request.params);
    const result = await metadata.packument(name, variantOf(request), request);
    registryOf.set(request, result.uplink);
    const { meta } = result.entry;
    if (meta.total > 0 && meta.filtered === meta.total) {
      throw new GatewayError('GW_ERR_POLICY_DENIED', {
        message: meta.notice ?? `Gatehouse refused every version of "${name}"`,
      });
    }
    // npm prints `npm-notice` only for responses it did not store (make-fetch-happen marks stored
    // ones with `x-local-cache`), so metadata with hidden versions is not stored by the client.
    if (meta.notice !== undefined) reply.header('npm-notice', meta.notice);
    return sendEntry(request, reply, result.entry, {
      stale: result.stale,
      policyVersion: result.policyVersion,
      noStore: meta.notice !== undefined,
    });
  };

  const tarball = async (
    request: FastifyRequest<{ Params: { scope?: string; name: string; file: string } }>,
    reply: FastifyReply,
  ) => {
    const name = nameFrom(request.params);
    const base = npmBaseName(name);
    const file = request.params.file;
    const version =
      file.startsWith(`${base}-`) && file.endsWith('.tgz') ? file.slice(base.length + 1, -4) : '';
    if (parseSemver(version) === undefined) {
      throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', { message: `No tarball "${file}" for "${name}"` });
    }
    const index = await metadata.index(name, request);
    const uplink = metadata.uplinkFor(name);
    registryOf.set(request, uplink.name);
    const facts = entryNamed(index.versions, version);
    if (facts?.tarball === undefined) {
      throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
        message: `Version "${name}@${version}" does not exist`,
      });
    }
    const subject = {
      ecosystem: 'npm' as const,
      name,
      version,
      registry: uplink.name,
      ...(facts.publishedAt === undefined ? {} : { publishedAt: facts.publishedAt }),
      ...(facts.integrity === undefined ? {} : { digest: facts.integrity }),
    };
    await requireAllowed(ctx, subject, callerOf(request), {
      now: ctx.clock.now(),
      registry: uplink.name,
      kind: 'file',
    });
    const digest = parseIntegrity(
      facts.integrity,
      facts.shasum === undefined ? undefined : { algorithm: 'sha1', hex: facts.shasum },
    );
    if (digest === undefined) {
      throw new GatewayError('GW_ERR_REGISTRY_INTEGRITY_MISSING', {
        message: `"${name}@${version}" has no published digest`,
      });
    }
    return sendVerifiedFile(ctx, request, reply, {
      uplink,
      url: facts.tarball,
      digest,
      resource: `npm:${name}@${version}`,
      contentType: 'application/octet-stream',
    });
  };

  const version = async (
    request: FastifyRequest<{ Params: { scope?: string; name: string; version: string } }>,
    reply: FastifyReply,
  ) => {
    const name = nameFrom(request.params);
    const result = await metadata.packument(name, 'full', request);
    const doc = JSON.parse(identityOf(result.entry).toString('utf8')) as {
      versions: Record<string, unknown>;
      'dist-tags': Record<string, string>;
    };
    const asked = request.params.version;
    const manifest = entryNamed(doc.versions, entryNamed(doc['dist-tags'], asked) ?? asked);
    if (manifest === undefined) {
      throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
        message: `Version "${name}@${request.params.version}" is not available (missing or refused by policy)`,
      });
    }
    return reply.header('cache-control', 'public, max-age=0, must-revalidate').send(manifest);
  };

  return {
    ecosystem: 'npm',
    prefix: '/npm',
    register(scope: FastifyInstance) {
      scope.setErrorHandler((error, request, reply) => sendNpmError(ctx, request, reply, error));
      scope.setNotFoundHandler((request, reply) =>
        sendNpmError(
          ctx,
          request,
          reply,
          new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
            message: `No npm endpoint "${request.method} ${request.url.split('?')[0] ?? ''}"`,
          }),
        ),
      );
      scope.addHook('onResponse', async (request, reply) => {
        const kind = request.url.includes('/-/') && request.url.endsWith('.tgz') ? 'file' : 'metadata';
        ctx.metrics.requests.inc({
          registry: registryOf.get(request) ?? 'none',
          ecosystem: 'npm',
          kind,
          status: reply.statusCode,
        });
      });
      scope.get('/-/ping', async () => ({}));
      scope.get('/-/v1/search', async (request, reply) => {
        const uplink = selector.all[0];
        if (uplink === undefined)
          throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', { message: 'No npm uplink is configured' });
        const query = request.url.slice(request.url.indexOf('?'));
        const res = await uplink.request({
          url: uplink.resolve(`-/v1/search${query.startsWith('?') ? query : ''}`),
          what: 'search',
        });
        reply
          .code(res.status)
          .header('content-type', String(res.headers['content-type'] ?? 'application/json'));
        return reply.send(res.body);
      });
      for (const path of ['/-/npm/v1/security/advisories/bulk', '/-/npm/v1/security/audits/quick']) {
        scope.post(
          path,
          unsupported(
            'npm audit is not served here; Gatehouse refuses vulnerable versions at install time',
            '',
          ),
          answered,
        );
      }
      // A scope is one path segment: `@scope%2fname` (the slash encoded) is not a scope but a
      // whole name, so the scoped routes refuse it and the unscoped ones, which also take
      // `%40scope%2fname`, serve it (`/@a%2fb/1.0.0` is a version document).
      const SCOPE = '@:scope(^[^/]+$)';
      scope.get('/:name', packument);
      scope.get(`/${SCOPE}/:name`, packument);
      scope.get('/:name/:version', version);
      scope.get(`/${SCOPE}/:name/:version`, version);
      scope.get('/:name/-/:file', tarball);
      scope.get(`/${SCOPE}/:name/-/:file`, tarball);
      scope.put(
        '/*',
        unsupported('Publishing through the Gatehouse proxy is not supported', 'GET, HEAD'),
        answered,
      );
    },
    async lookup(name, version, request) {
      const index = await metadata.index(checkNpmName(name), request);
      const facts = entryNamed(index.versions, version);
      if (facts === undefined) return undefined;
      return {
        registry: index.uplink,
        ...(facts.publishedAt === undefined ? {} : { publishedAt: facts.publishedAt }),
      };
    },
    invalidate: (name) => ctx.metadata.invalidate('npm', name),
    close: () => processor.close(),
  };
}
