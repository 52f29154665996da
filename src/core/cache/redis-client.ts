import { GatewayError } from '#core/errors';
import type { Logger } from '#core/log';
import { createRequire } from 'node:module';
import type * as IORedis from 'ioredis';
import type { Redis } from 'ioredis';

/** Connection options shared by the Redis cache and the invalidation bus. */
export interface RedisConnectionOptions {
  /** `redis://[:password@]host:6379[/db]` or `rediss://…`. */
  readonly url: string;
  /** How long to wait for the TCP connection (default 2000 ms). */
  readonly connectTimeoutMs?: number;
  /** How long one command may take before it fails (default 1000 ms). */
  readonly commandTimeoutMs?: number;
  readonly log?: Logger;
}

/** The URL without its password, for messages and logs. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '[unparsable URL]';
  }
}

// ioredis is loaded only when a Redis cache is configured: a process on the in-memory cache
// never pays for it in memory or start-up time.
const requireOptional = createRequire(import.meta.url);

/**
 * Opens an ioredis client that fails fast instead of queueing: a cache that waits for a dead
 * Redis would turn a cache outage into a request outage. Reconnection continues in the
 * background with capped backoff.
 */
export function openRedis(options: RedisConnectionOptions, role: string): Redis {
  if (!/^rediss?:\/\//.test(options.url)) {
    throw new TypeError(
      `A Redis URL starts with "redis://" or "rediss://", got "${redactRedisUrl(options.url)}"`,
    );
  }
  const client = new (requireOptional('ioredis') as typeof IORedis).Redis(options.url, {
    connectTimeout: options.connectTimeoutMs ?? 2000,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    connectionName: `gatehouse-${role}`,
  });
  let down = false;
  client.on('error', (error: Error) => {
    // ioredis emits 'error' on every failed reconnect; log the first of a streak only.
    if (!down) options.log?.warn('Redis connection failed', { role, error: error.message });
    down = true;
  });
  client.on('ready', () => {
    if (down) options.log?.info('Redis connection restored', { role });
    down = false;
  });
  return client;
}

/** Resolves once the client is connected, or rejects with GW_ERR_CACHE_UNAVAILABLE. */
export async function pingRedis(client: Redis, timeoutMs: number, label: string): Promise<void> {
  const unavailable = (cause?: unknown) =>
    new GatewayError('GW_ERR_CACHE_UNAVAILABLE', {
      message: `Redis "${label}" did not answer within ${timeoutMs} ms`,
      cause,
    });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unavailable()), timeoutMs);
  });
  const attempt = async () => {
    if (client.status === 'end') throw new Error('The Redis client is closed');
    if (client.status !== 'ready') {
      await new Promise<void>((resolve, reject) => {
        client.once('ready', resolve);
        client.once('end', () => reject(new Error('The Redis client is closed')));
      });
    }
    await client.ping();
  };
  try {
    await Promise.race([attempt(), deadline]);
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    throw unavailable(error);
  } finally {
    clearTimeout(timer);
  }
}

/** Escapes the glob characters of SCAN MATCH so a prefix matches only itself. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** Closes a client politely (QUIT), or drops the socket when that fails; idempotent. */
export async function quitRedis(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
