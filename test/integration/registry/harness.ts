/**
 * A real CoreServices for the registry door's black-box tests: SQLite in a temp folder, the
 * memory (or memory + Redis) cache, the audit log, metrics, limiters and the main HTTP server on
 * 127.0.0.1:0. Authentication accepts one admin token; everything else is refused as the real
 * authenticator refuses unknown credentials.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Clock, type ConfigSection, type CoreServices, createHealthRegistry } from '#core/app';
import { createAuditLog } from '#core/audit';
import type { Authenticator } from '#core/auth';
import { type Cache, cacheConfigSchema, createCache } from '#core/cache';
import { validateRaw } from '#core/config';
import { GatewayError } from '#core/errors';
import { createHttpServer, httpConfigSchema } from '#core/http';
import { createLogger } from '#core/log';
import { createMetrics } from '#core/metrics';
import { createLimiterFactory } from '#core/ratelimit';
import { authorize } from '#core/rbac';
import { createSqliteDatabase } from '#core/storage';
import {
  createRegistryDoor,
  type RegistryConfig,
  registryConfigSchema,
} from '../../../src/doors/registry/index.ts';

export const ADMIN_TOKEN = 'registry-test-admin-token';

const authenticator: Authenticator = {
  authenticate: async (c) => {
    if (c.bearer === ADMIN_TOKEN)
      return { id: 'user:admin', kind: 'user', name: 'admin', bindings: [{ role: 'admin', namespace: '*' }] };
    throw new GatewayError(
      c.bearer === undefined && c.apiKey === undefined ? 'GW_ERR_AUTH_REQUIRED' : 'GW_ERR_AUTH_TOKEN_INVALID',
    );
  },
};

/** A clock tests move by hand. */
export class TestClock implements Clock {
  time: number;
  constructor(start: number) {
    this.time = start;
  }
  now(): number {
    return this.time;
  }
}

/** A section whose value tests replace, as a reload would. */
export class MutableSection<T> implements ConfigSection<T> {
  #value: T;
  readonly #listeners = new Set<(next: T, previous: T) => void>();
  constructor(value: T) {
    this.#value = value;
  }
  current(): T {
    return this.#value;
  }
  subscribe(listener: (next: T, previous: T) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  set(next: T): void {
    const previous = this.#value;
    this.#value = next;
    for (const l of this.#listeners) l(next, previous);
  }
}

export interface Gateway extends AsyncDisposable {
  readonly url: string;
  readonly core: CoreServices;
  readonly section: MutableSection<RegistryConfig>;
  readonly door: ReturnType<typeof createRegistryDoor>;
  readonly dataDir: string;
}

export const registryConfig = (raw: Record<string, unknown>): RegistryConfig =>
  validateRaw(registryConfigSchema, raw, 'test');

/** Starts a gateway with the registry door on 127.0.0.1:0. */
export async function startGateway(options: {
  readonly config: Record<string, unknown>;
  readonly clock?: Clock;
  readonly redisUrl?: string;
  readonly cacheBytes?: number;
  readonly cachePrefix?: string;
}): Promise<Gateway> {
  const dataDir = await mkdtemp(join(tmpdir(), 'gatehouse-registry-'));
  const clock = options.clock ?? { now: () => Date.now() };
  const log = createLogger({ level: 'silent' });
  const metrics = createMetrics();
  const db = await createSqliteDatabase({ file: join(dataDir, 'gatehouse.db') });
  const cache: Cache = createCache(
    validateRaw(
      cacheConfigSchema,
      {
        url: options.redisUrl ?? '',
        maxBytes: options.cacheBytes ?? 256 << 20,
        keyPrefix: options.cachePrefix ?? `ghtest-${process.pid}-${Math.floor(Math.random() * 1e9)}:`,
      },
      'test',
    ),
    { log, clock },
  );
  const health = createHealthRegistry({ clock });
  const limiters = createLimiterFactory({});
  const audit = await createAuditLog({ db, file: join(dataDir, 'audit.jsonl'), clock, log, metrics });
  const http = await createHttpServer({
    config: validateRaw(httpConfigSchema, { listen: '127.0.0.1:0', rateLimit: { rate: 0 } }, 'test'),
    log,
    metrics,
    authenticator,
    authorize,
    limiters,
    clock,
    health,
    audit,
  });
  const shutdown = new AbortController();
  const core: CoreServices = {
    log,
    clock,
    metrics,
    db,
    cache,
    audit,
    auth: authenticator,
    authorize,
    http,
    limiters,
    health,
    dataDir,
    shutdown: shutdown.signal,
  };
  const section = new MutableSection(registryConfig(options.config));
  const door = createRegistryDoor(core, section);
  await door.provision(core);
  await door.validate();
  await door.start();
  const url = await http.listen();
  return {
    url,
    core,
    section,
    door,
    dataDir,
    async [Symbol.asyncDispose]() {
      shutdown.abort();
      await http.close(AbortSignal.timeout(2000));
      await door[Symbol.asyncDispose]();
      await cache.close();
      await audit.close();
      await db.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `fn` under another policy (a reload, as an edit of the file would cause), then restores
 * the gateway's configuration `config`.
 */
export async function withPolicy(
  gw: Gateway,
  config: Record<string, unknown>,
  policy: Record<string, unknown>,
  fn: () => Promise<void>,
): Promise<void> {
  gw.section.set(registryConfig({ ...config, policy }));
  try {
    await fn();
  } finally {
    gw.section.set(registryConfig(config));
  }
}

/**
 * The three ways a young version gets through the age rule without waiting: an exclusion
 * pattern, the rule excluded for its registry, and a registry's own shorter age; each asserted
 * by `check` (which must see the young version allowed), then refused again under `base`.
 */
export async function ageRuleEscapes(
  gw: Gateway,
  config: Record<string, unknown>,
  options: { readonly registry: string; readonly pattern: string },
  check: (label: string) => Promise<void>,
): Promise<void> {
  const age = (exclude: readonly string[] = [], value = '2d') => ({
    id: 'min-age',
    type: 'minimumAge',
    minimumAge: { age: value, exclude },
  });
  await withPolicy(gw, config, { rules: [age([options.pattern])] }, () =>
    check(`exclude "${options.pattern}"`),
  );
  await withPolicy(
    gw,
    config,
    { rules: [age()], registries: { [options.registry]: { exclude: ['min-age'] } } },
    () => check(`rule excluded for "${options.registry}"`),
  );
  await withPolicy(
    gw,
    config,
    { rules: [age()], registries: { [options.registry]: { rules: [age([], '1m')] } } },
    () => check(`a 1m age for "${options.registry}"`),
  );
}
