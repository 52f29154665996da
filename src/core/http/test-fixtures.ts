/**
 * Test helpers for the main server: a fake Authenticator (the identity module has its own
 * tests), an in-memory token bucket with an injected clock, and a server started on
 * 127.0.0.1:0 through the real config validator. Only tests import this file.
 */
import { Writable } from 'node:stream';
import type { AuditInput, AuditLog } from '#core/audit';
import type { Authenticator, Credentials } from '#core/auth';
import { createHealthRegistry, type HealthRegistry, type LimiterFactory } from '#core/app';
import { validateRaw } from '#core/config';
import { GatewayError } from '#core/errors';
import { createLogger } from '#core/log';
import { createMetrics, type Metrics } from '#core/metrics';
import { createLimiterFactory, type RateLimiter, type TokenBucketOptions } from '#core/ratelimit';
import { authorize, type Principal } from '#core/rbac';
import { type HttpConfig, httpConfigSchema } from './config.ts';
import { createHttpServer, type MainHttpServer } from './server.ts';

export const PRINCIPALS: Readonly<Record<string, Principal>> = {
  'admin-token': {
    id: 'user:admin',
    kind: 'user',
    name: 'admin',
    bindings: [{ role: 'admin', namespace: '*' }],
  },
  'consumer-token': {
    id: 'user:carol',
    kind: 'user',
    name: 'carol',
    bindings: [{ role: 'consumer', namespace: 'team-a' }],
  },
  'office-token': {
    id: 'user:office',
    kind: 'user',
    name: 'office',
    bindings: [{ role: 'admin', namespace: '*' }],
    allowedCidrs: ['10.0.0.0/8', 'fd00::/8'],
  },
  k_auditor: {
    id: 'key:k_auditor',
    kind: 'apikey',
    name: 'audit-bot',
    bindings: [{ role: 'auditor', namespace: '*' }],
  },
};

/** Accepts the tokens and keys of PRINCIPALS and a certificate with CN=billing; refuses the rest as the real one does. */
export const fakeAuthenticator: Authenticator = {
  authenticate(credentials: Credentials) {
    if (credentials.certificate !== undefined) {
      if (credentials.certificate.subject.includes('CN=billing')) {
        return Promise.resolve({
          id: 'cert:billing',
          kind: 'certificate',
          name: 'billing',
          bindings: [{ role: 'auditor', namespace: '*' }],
        });
      }
      return Promise.reject(new GatewayError('GW_ERR_AUTH_CERT_INVALID'));
    }
    if (credentials.bearer === 'expired-token')
      return Promise.reject(new GatewayError('GW_ERR_AUTH_TOKEN_EXPIRED'));
    if (credentials.bearer === 'crash-token')
      return Promise.reject(new Error('jwks cache exploded at 0xdeadbeef'));
    const found = PRINCIPALS[credentials.bearer ?? credentials.apiKey ?? ''];
    if (found === undefined) {
      return Promise.reject(
        new GatewayError(
          credentials.apiKey === undefined ? 'GW_ERR_AUTH_TOKEN_INVALID' : 'GW_ERR_AUTH_KEY_INVALID',
        ),
      );
    }
    return Promise.resolve(found);
  },
};

/**
 * The real in-memory limiter factory on an injected clock, with a switch that makes every
 * bucket fail as a Redis outage would.
 */
export function memoryLimiters(now: () => number): LimiterFactory & { failing: boolean } {
  const real = createLimiterFactory({ clock: { now } });
  const factory = {
    failing: false,
    tokenBucket(name: string, options: TokenBucketOptions): RateLimiter {
      const limiter = real.tokenBucket(name, options);
      return {
        take: (key, cost) =>
          factory.failing ? Promise.reject(new Error('redis down')) : limiter.take(key, cost),
        reset: (key) => limiter.reset(key),
      };
    },
    concurrency: (name: string, max: number) => real.concurrency(name, max),
  };
  return factory;
}

/** Records audit events in memory. */
export function memoryAudit(): AuditLog & { events: AuditInput[] } {
  const events: AuditInput[] = [];
  return {
    events,
    record: (event) => {
      events.push(event);
      return Promise.resolve();
    },
    query: () => Promise.resolve({ events: [] }),
    verify: () => Promise.resolve({ ok: true, checked: 0 }),
  };
}

export interface TestServer extends AsyncDisposable {
  readonly server: MainHttpServer;
  readonly url: string;
  readonly health: HealthRegistry;
  readonly metrics: Metrics;
  readonly audit: ReturnType<typeof memoryAudit>;
  readonly limiters: ReturnType<typeof memoryLimiters>;
  /** Every log line written so far, parsed. */
  readonly logs: Record<string, unknown>[];
  /** Moves the limiter clock forward. */
  advance(ms: number): void;
}

/** Starts the main server on 127.0.0.1:0 with `server` config given as a raw document. */
export async function startTestServer(
  raw: Record<string, unknown> = {},
  setup?: (server: MainHttpServer) => void,
  /** A limiter factory to use instead of the in-memory one (e.g. on the real Redis). */
  sharedLimiters?: LimiterFactory,
): Promise<TestServer> {
  const config: HttpConfig = validateRaw(httpConfigSchema, { listen: '127.0.0.1:0', ...raw }, 'test');
  let now = 1_000_000;
  const logs: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const log = createLogger({ level: 'debug', stream });
  const metrics = createMetrics({ processMetrics: false });
  const clock = { now: () => now };
  const health = createHealthRegistry({ clock });
  const limiters = memoryLimiters(clock.now);
  const audit = memoryAudit();
  const server = await createHttpServer({
    config,
    log,
    metrics,
    authenticator: fakeAuthenticator,
    authorize,
    limiters: sharedLimiters ?? limiters,
    clock,
    health,
    audit,
  });
  setup?.(server);
  const url = await server.listen();
  return {
    server,
    url,
    health,
    metrics,
    audit,
    limiters,
    logs,
    advance: (ms) => {
      now += ms;
    },
    [Symbol.asyncDispose]: () => server.close(AbortSignal.timeout(2000)),
  };
}
