/**
 * The door as a checksum database proxy (go.dev/ref/mod#goproxy-protocol, "Checksum database"):
 * the go command asks `<GOPROXY>/sumdb/<name>/supported` and, on a 200, reads the database that
 * GOSUMDB names through the proxy instead of directly, which is what a network without direct
 * access needs. The door serves its configured `checksumDb` under the name of its verifier key:
 * - lookups, proven by the door (the proof its own downloads need) and cached for good, so they
 *   keep answering while the database is down;
 * - hash tiles (`tile/8/<level>/…`) and data tiles (`tile/8/data/…`), cached for good (a tile of
 *   a given width never changes); a hash tile must hold exactly its width of hashes;
 * - `latest`, the signed tree head, checked against the key; the last good one is served while
 *   the database is down.
 * The go command checks every answer again with its own copy of the key.
 */
import { GatewayError } from '#core/errors';
import { isCanonicalGoVersion } from '#core/vulndb';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { callerOf, isUplinkFailure, type RegistryContext } from '../context.ts';
import { auditInvalidUpstream } from '../metadata-flow.ts';
import type { UplinkClient } from '../uplink/client.ts';
import { checkModulePath, unescapeGoPath } from './paths.ts';
import { openNote, parseTreeHead, SumdbVerificationError, type SumdbVerifier, tilePath } from './tlog.ts';
import { fetchSmall } from './upstream.ts';
import { checksumLookup, readSumdbTile, sumdbCacheKey } from './verify.ts';

const TILE = /^tile\/8\/([0-9]|data)\/((?:x\d{3}\/)*\d{3})(?:\.p\/(\d{1,3}))?$/;
const LATEST_TTL = 365 * 86_400_000;

export interface SumdbProxy {
  /** Answers `GET /go/sumdb/<path>`; `path` is what follows `sumdb/`. */
  serve(path: string, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply>;
}

const notFound = (what: string) =>
  new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', { message: `No checksum database path "${what}"` });

/** A tile path in canonical form (tlog `Tile.Path`), or undefined. */
function parseTile(path: string): { path: string; data: boolean; width: number } | undefined {
  const m = TILE.exec(path);
  if (m === null) return undefined;
  const width = m[3] === undefined ? 256 : Number(m[3]);
  if (width < 1 || width > 256) return undefined;
  const index = Number((m[2] as string).replace(/x|\//g, ''));
  const data = m[1] === 'data';
  const canonical = tilePath(data ? 0 : Number(m[1]), index, width);
  const expected = data ? canonical.replace(/^tile\/8\/0\//, 'tile/8/data/') : canonical;
  // Only the one spelling of each tile (no `x000/` prefixes, no `.p/256`): one cache entry each.
  return expected === path ? { path, data, width } : undefined;
}

/** Splits `<escaped module>@<escaped version>`; throws GW_ERR_REGISTRY_NAME_INVALID. */
function parseLookupPath(text: string): { module: string; version: string } | undefined {
  const at = text.lastIndexOf('@');
  if (at <= 0) return undefined;
  const module = unescapeGoPath(text.slice(0, at));
  const version = unescapeGoPath(text.slice(at + 1));
  if (module === undefined || version === undefined || !isCanonicalGoVersion(version))
    throw new GatewayError('GW_ERR_REGISTRY_NAME_INVALID', {
      message: `Invalid checksum database lookup "${text.slice(0, 300)}": not <module>@<version>`,
      details: { ecosystem: 'go' },
    });
  return { module: checkModulePath(module), version };
}

export function createSumdbProxy(
  ctx: RegistryContext,
  db: UplinkClient | undefined,
  verifier: SumdbVerifier | undefined,
): SumdbProxy {
  const invalid = (what: string, why: string) =>
    new GatewayError('GW_ERR_REGISTRY_UPSTREAM_INVALID', {
      message: `Checksum database "${db?.name}" sent an invalid ${what}: ${why}`,
    });

  async function tile(source: UplinkClient, t: { path: string; data: boolean; width: number }) {
    try {
      return await readSumdbTile(ctx, source, t);
    } catch (error) {
      if (error instanceof SumdbVerificationError) throw invalid(t.path, error.message);
      throw error;
    }
  }

  /** The signed tree head, checked against the key; the last good one while the database is down. */
  async function latest(source: UplinkClient, v: SumdbVerifier, request: FastifyRequest): Promise<Buffer> {
    const key = sumdbCacheKey(source, 'latest');
    try {
      const { body } = await fetchSmall(
        source,
        source.resolve('latest'),
        'checksum database latest',
        1 << 16,
      );
      try {
        parseTreeHead(openNote(body.toString('utf8'), v));
      } catch (error) {
        if (!(error instanceof SumdbVerificationError)) throw error;
        const refused = invalid('tree head', error.message);
        auditInvalidUpstream(ctx, callerOf(request), `go:sumdb/${v.name}`, source.name, refused.message);
        throw refused;
      }
      await ctx.core.cache.set(key, body, { ttlMs: LATEST_TTL });
      return body;
    } catch (error) {
      if (!isUplinkFailure(error)) throw error;
      const kept = await ctx.core.cache.get(key);
      if (kept === undefined) throw error;
      return kept;
    }
  }

  return {
    async serve(path, request, reply) {
      const slash = path.indexOf('/');
      const name = slash < 0 ? path : path.slice(0, slash);
      const rest = slash < 0 ? '' : path.slice(slash + 1);
      // Only the configured database, under the name its key gives it; for any other name the
      // go command goes on to its next GOPROXY entry or to the database itself.
      if (db === undefined || verifier === undefined || name !== verifier.name)
        throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
          message: `This proxy does not serve the checksum database "${name.slice(0, 200)}"`,
        });
      if (rest === 'supported') return reply.code(200).type('text/plain; charset=utf-8').send('');
      if (rest === 'latest')
        return reply
          .type('text/plain; charset=utf-8')
          .header('cache-control', 'no-cache')
          .send(await latest(db, verifier, request));
      if (rest.startsWith('lookup/')) {
        const parsed = parseLookupPath(rest.slice('lookup/'.length));
        if (parsed === undefined) throw notFound(rest);
        const answer = await checksumLookup(
          ctx,
          db,
          verifier,
          parsed.module,
          parsed.version,
          callerOf(request),
        );
        if (answer === undefined)
          throw new GatewayError('GW_ERR_REGISTRY_NOT_FOUND', {
            message: `Checksum database "${verifier.name}" does not know "${parsed.module}@${parsed.version}"`,
          });
        return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(answer.text);
      }
      const t = parseTile(rest);
      if (t === undefined) throw notFound(rest);
      return reply
        .type('application/octet-stream')
        .header('cache-control', 'public, max-age=31536000, immutable')
        .send(await tile(db, t));
    },
  };
}
