import { randomUUID } from 'node:crypto';
import { GatewayError } from '#core/errors';
import {
  openRedis,
  pingRedis,
  quitRedis,
  type RedisConnectionOptions,
  redactRedisUrl,
} from './redis-client.ts';

/** One invalidation, as broadcast to every replica. */
export interface InvalidationMessage {
  readonly op: 'delete' | 'prefix';
  readonly key: string;
  /** The bus instance that sent it; a replica ignores its own messages. */
  readonly origin: string;
}

/**
 * Broadcasts cache invalidations to every replica. Delivery is at most once (Redis pub/sub),
 * so listeners also hear `reset` whenever the subscription (re)starts: anything may have been
 * missed while it was down, and local copies must be dropped.
 */
export interface InvalidationBus {
  readonly origin: string;
  /** True while the subscription is live; local tiers must not be trusted otherwise. */
  readonly connected: boolean;
  publish(op: InvalidationMessage['op'], key: string): Promise<void>;
  /** Adds a listener for messages of other replicas; returns its remover. */
  subscribe(listener: (message: InvalidationMessage) => void): () => void;
  /** Adds a listener called when the subscription (re)starts; returns its remover. */
  onReset(listener: () => void): () => void;
  /** Resolves once subscribed, or rejects with GW_ERR_CACHE_UNAVAILABLE. */
  ready(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Options of the Redis invalidation bus. */
export interface RedisBusOptions extends RedisConnectionOptions {
  /** The pub/sub channel, e.g. `gatehouse:cache:invalidate`. */
  readonly channel: string;
}

function parse(text: string): InvalidationMessage | undefined {
  try {
    const m = JSON.parse(text) as { o?: unknown; p?: unknown; k?: unknown };
    if (typeof m.o !== 'string' || typeof m.k !== 'string') return undefined;
    if (m.p !== 'delete' && m.p !== 'prefix') return undefined;
    return { origin: m.o, op: m.p, key: m.k };
  } catch {
    return undefined;
  }
}

/** Creates an invalidation bus on Redis pub/sub (one publishing and one subscribed connection). */
export function createRedisInvalidationBus(options: RedisBusOptions): InvalidationBus {
  const origin = randomUUID();
  const label = redactRedisUrl(options.url);
  const publisher = openRedis(options, `cache-bus-pub-${origin}`);
  const subscriber = openRedis(options, `cache-bus-sub-${origin}`);
  const listeners = new Set<(message: InvalidationMessage) => void>();
  const resets = new Set<() => void>();
  let connected = false;

  subscriber.on('ready', () => {
    void (async () => {
      try {
        await subscriber.subscribe(options.channel);
      } catch (error) {
        options.log?.warn('Cannot subscribe to cache invalidations', { error: (error as Error).message });
        return;
      }
      connected = true;
      for (const reset of resets) reset();
    })();
  });
  subscriber.on('close', () => {
    connected = false;
  });
  subscriber.on('message', (channel: string, text: string) => {
    if (channel !== options.channel) return;
    const message = parse(text);
    if (message === undefined) {
      options.log?.warn('Ignoring a malformed cache invalidation', { channel });
      return;
    }
    if (message.origin === origin) return;
    for (const listener of listeners) listener(message);
  });

  return {
    origin,
    get connected() {
      return connected;
    },
    async publish(op, key) {
      try {
        await publisher.publish(options.channel, JSON.stringify({ o: origin, p: op, k: key }));
      } catch (error) {
        throw new GatewayError('GW_ERR_CACHE_UNAVAILABLE', {
          message: `Cannot broadcast the invalidation of "${key}" through Redis "${label}"`,
          cause: error,
        });
      }
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    onReset(listener) {
      resets.add(listener);
      return () => resets.delete(listener);
    },
    async ready(timeoutMs = 2000) {
      await pingRedis(publisher, timeoutMs, label);
      if (connected) return;
      let timer: NodeJS.Timeout | undefined;
      let remove: (() => void) | undefined;
      try {
        await new Promise<void>((resolve, reject) => {
          resets.add(resolve);
          remove = () => resets.delete(resolve);
          timer = setTimeout(
            () =>
              reject(
                new GatewayError('GW_ERR_CACHE_UNAVAILABLE', {
                  message: `Not subscribed to cache invalidations on Redis "${label}" within ${timeoutMs} ms`,
                }),
              ),
            timeoutMs,
          );
        });
      } finally {
        clearTimeout(timer);
        remove?.();
      }
    },
    async close() {
      connected = false;
      listeners.clear();
      resets.clear();
      await Promise.all([publisher, subscriber].map((c) => quitRedis(c)));
    },
  };
}
