import { isAbsolute, join } from 'node:path';
import type { Clock } from '#core/app';
import type { Logger } from '#core/log';
import type { Histogram } from '#core/metrics';
import type { KvConfig, KvDriverConfig } from '../config.ts';
import type { KvDriver } from './driver.ts';
import { createMemoryDriver } from './memory.ts';
import { createNatsDriver } from './nats.ts';
import { createPostgresDriver } from './postgres.ts';
import { createRedisDriver } from './redis.ts';
import { createSqliteDriver } from './sqlite.ts';

type Sweepable = KvDriver & { sweep?: () => number | Promise<number> };

function createDriver(name: string, config: KvDriverConfig, clock: Clock, dataDir: string): Sweepable {
  const url = config.url ?? '';
  switch (config.type) {
    case 'memory':
      return createMemoryDriver({ clock });
    case 'sqlite': {
      const path = config.path ?? 'kv.sqlite';
      return createSqliteDriver({
        clock,
        busyTimeoutMs: config.timeout,
        path: path === ':memory:' || isAbsolute(path) ? path : join(dataDir, path),
      });
    }
    case 'redis':
      return createRedisDriver({
        url,
        clock,
        timeoutMs: config.timeout,
        connectionName: `gatehouse-kv-${name}`,
        ...(config.keyPrefix === undefined ? {} : { keyPrefix: config.keyPrefix }),
      });
    case 'postgres':
      return createPostgresDriver({
        url,
        clock,
        timeoutMs: config.timeout,
        poolSize: config.poolSize,
        applicationName: `gatehouse-kv-${name}`,
      });
    case 'nats':
      return createNatsDriver({
        url,
        clock,
        timeoutMs: config.timeout,
        ...(config.keyPrefix === undefined ? {} : { bucket: config.keyPrefix }),
      });
    default:
      throw new TypeError(`Unknown kv driver type "${String(config.type)}"`);
  }
}

const METHODS = [
  'get',
  'getMany',
  'set',
  'setMany',
  'delete',
  'exists',
  'expire',
  'ttl',
  'persist',
  'list',
  'ping',
] as const satisfies readonly (keyof KvDriver)[];

/** Observes the latency of every call of `driver` as `gatehouse_kv_driver_duration_seconds`. */
export function instrument(driver: KvDriver, name: string, histogram: Histogram): KvDriver {
  const wrapped: Record<string, unknown> = { kind: driver.kind, close: () => driver.close() };
  for (const method of METHODS) {
    const original = driver[method] as (...args: unknown[]) => Promise<unknown>;
    wrapped[method] = async (...args: unknown[]) => {
      const stop = histogram.startTimer({ driver: name, type: driver.kind, operation: method });
      try {
        const out = await original.apply(driver, args);
        stop({ outcome: 'ok' });
        return out;
      } catch (error) {
        stop({ outcome: 'error' });
        throw error;
      }
    };
  }
  return wrapped as unknown as KvDriver;
}

/** The drivers of the door, by name, and which one holds a namespace. */
export interface DriverRegistry {
  /** The driver name and driver of a namespace (already validated). */
  route(namespace: string): { readonly name: string; readonly driver: KvDriver };
  readonly drivers: ReadonlyMap<string, KvDriver>;
  close(): Promise<void>;
}

export function createDriverRegistry(options: {
  readonly config: KvConfig;
  readonly clock: Clock;
  readonly dataDir: string;
  readonly log: Logger;
  readonly histogram: Histogram;
}): DriverRegistry {
  const { config, log } = options;
  const drivers = new Map<string, KvDriver>();
  const timers: NodeJS.Timeout[] = [];
  for (const [name, dc] of Object.entries(config.drivers)) {
    const raw = createDriver(name, dc, options.clock, options.dataDir);
    drivers.set(name, instrument(raw, name, options.histogram));
    const sweep = raw.sweep;
    if (sweep !== undefined && dc.sweepInterval > 0) {
      const tick = async () => {
        try {
          const removed = await sweep.call(raw);
          if (removed > 0) log.debug('Swept expired kv entries', { driver: name, removed });
        } catch (error) {
          log.warn('Sweeping expired kv entries failed', { driver: name, error });
        }
      };
      timers.push(setInterval(() => void tick(), dc.sweepInterval).unref());
    }
  }
  const fallback = config.defaultDriver;
  return {
    drivers,
    route(namespace) {
      const name = config.namespaces[namespace] ?? fallback;
      const driver = drivers.get(name);
      if (driver === undefined) throw new TypeError(`No kv driver named "${name}"`);
      return { name, driver };
    },
    async close() {
      for (const t of timers) clearInterval(t);
      await Promise.allSettled([...drivers.values()].map((d) => d.close()));
    },
  };
}
