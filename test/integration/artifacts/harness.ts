/**
 * A real CoreServices for the artifacts door's black-box tests: SQLite in a temporary data
 * folder, the real HTTP server on 127.0.0.1:0, real metrics, audit log, RBAC, limiter factory
 * and health registry. Authentication is a bearer-token table (`token-<role>`): the door only
 * sees the Principal either way, and rbac.test.ts runs the same role × endpoint matrix once more
 * against a real gateway process, through the core's users, passwords and JWTs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoreServices } from '#core/app';
import { createHealthRegistry, staticSection } from '#core/app';
import { createAuditLog } from '#core/audit';
import type { Authenticator } from '#core/auth';
import { createMemoryCache } from '#core/cache';
import { validateRaw } from '#core/config';
import { GatewayError } from '#core/errors';
import { createHttpServer, httpConfigSchema } from '#core/http';
import { silentLogger } from '#core/log';
import { createMetrics } from '#core/metrics';
import { createLimiterFactory } from '#core/ratelimit';
import { authorize, type Principal } from '#core/rbac';
import { createPostgresDatabase, createSqliteDatabase } from '#core/storage';
import {
  type ArtifactsDoor,
  artifactsConfigSchema,
  createArtifactsDoor,
} from '../../../src/doors/artifacts/index.ts';

/** One principal per role, repository `team` unless global. */
export const USERS: Readonly<Record<string, Principal>> = {
  admin: { id: 'user:admin', kind: 'user', name: 'admin', bindings: [{ role: 'admin', namespace: '*' }] },
  publisher: {
    id: 'user:pub',
    kind: 'user',
    name: 'pub',
    bindings: [{ role: 'publisher', namespace: 'team' }],
  },
  consumer: {
    id: 'user:con',
    kind: 'user',
    name: 'con',
    bindings: [{ role: 'consumer', namespace: 'team' }],
  },
  auditor: { id: 'user:aud', kind: 'user', name: 'aud', bindings: [{ role: 'auditor', namespace: '*' }] },
  outsider: {
    id: 'user:out',
    kind: 'user',
    name: 'out',
    bindings: [{ role: 'publisher', namespace: 'other' }],
  },
  operator: { id: 'user:op', kind: 'user', name: 'op', bindings: [{ role: 'operator', namespace: '*' }] },
};

const tokens: Authenticator = {
  authenticate: async (credentials) => {
    const user = USERS[(credentials.bearer ?? '').replace(/^token-/, '')];
    if (user === undefined) throw new GatewayError('GW_ERR_AUTH_TOKEN_INVALID');
    return user;
  },
};

/** A running door on a real core. */
export interface DoorHarness extends AsyncDisposable {
  readonly url: string;
  readonly home: string;
  readonly door: ArtifactsDoor;
  readonly core: CoreServices;
  /** Sends a request as `user` (`anonymous` sends no credentials). */
  call(
    user: string,
    method: string,
    path: string,
    body?: string | Buffer | AsyncIterable<Uint8Array>,
    headers?: Record<string, string>,
  ): Promise<{
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: Buffer;
    json: () => Record<string, unknown>;
  }>;
}

/**
 * Starts the artifacts door with `raw` as its validated `artifacts` section, on SQLite in the
 * data folder, or on PostgreSQL when `postgresUrl` is given (a schema of its own, see
 * isolatedPostgres).
 */
export async function startDoor(
  raw: Record<string, unknown> = {},
  home?: string,
  options: { readonly postgresUrl?: string } = {},
): Promise<DoorHarness> {
  const dataDir = home ?? mkdtempSync(join(tmpdir(), 'gh-art-int-'));
  const log = silentLogger();
  const metrics = createMetrics({ processMetrics: false });
  const clock = { now: () => Date.now() };
  const db =
    options.postgresUrl === undefined
      ? await createSqliteDatabase({ file: join(dataDir, 'gatehouse.sqlite') })
      : createPostgresDatabase({ url: options.postgresUrl, poolSize: 4 });
  const health = createHealthRegistry({ clock });
  const limiters = createLimiterFactory({ clock });
  const http = await createHttpServer({
    config: validateRaw(httpConfigSchema, { listen: '127.0.0.1:0', rateLimit: { rate: 0 } }, 'test'),
    log,
    metrics,
    authenticator: tokens,
    authorize,
    limiters,
    clock,
    health,
  });
  const { AUDIT_MIGRATIONS } = await import('#core/audit');
  await db.migrate(AUDIT_MIGRATIONS);
  const audit = await createAuditLog({ db, file: join(dataDir, 'audit.jsonl'), clock, log, metrics });
  http.setAudit(audit);
  const core: CoreServices = {
    log,
    clock,
    metrics,
    db,
    cache: createMemoryCache({ maxBytes: 1 << 20 }),
    audit,
    auth: tokens,
    authorize,
    http,
    limiters,
    health,
    dataDir,
    shutdown: new AbortController().signal,
  };
  const door = createArtifactsDoor(core, staticSection(validateRaw(artifactsConfigSchema, raw, 'test')));
  await door.provision(core);
  await door.validate();
  await door.start();
  const url = await http.listen();
  return {
    url,
    home: dataDir,
    door,
    core,
    async call(user, method, path, body, headers = {}) {
      // Loaded here, not at the top: the door's child process (child-door.ts) runs this module
      // for startDoor only, and its memory is measured as the door's.
      const { request } = await import('undici');
      const res = await request(`${url}${path}`, {
        method: method as 'GET',
        headers: { ...(user === 'anonymous' ? {} : { authorization: `Bearer token-${user}` }), ...headers },
        ...(body === undefined ? {} : { body: body as string }),
      });
      const data = Buffer.from(await res.body.arrayBuffer());
      return {
        status: res.statusCode,
        headers: res.headers,
        body: data,
        json: () => JSON.parse(data.toString('utf8')) as Record<string, unknown>,
      };
    },
    async [Symbol.asyncDispose]() {
      await door.stop(AbortSignal.timeout(5000));
      await http.close(AbortSignal.timeout(2000));
      // As serve does: the audit log flushes and closes its file before the database closes.
      await audit.close();
      await db.close();
      if (home === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
