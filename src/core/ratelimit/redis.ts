import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from '#core/log';
import type { Redis } from 'ioredis';
import { checkBucketOptions, checkCost, checkMax, type LimiterClock, oncePermit } from './memory.ts';
import type { ConcurrencyLimiter, LimitDecision, Permit, RateLimiter, TokenBucketOptions } from './port.ts';

/** Lua that sets `now` from ARGV[i] when given, else from the server clock (TIME). */
const now = (i: number) => `local now = tonumber(ARGV[${i}])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/**
 * Token bucket, atomically in Redis. Time is the server's (TIME) unless the caller passes one,
 * so replicas with skewed clocks share one consistent bucket. The key expires when the bucket
 * would be full again, because a full bucket and a missing one mean the same thing.
 * Returns {allowed, tokens (as text: Lua numbers become integers on return), retryAfterMs}.
 */
const TAKE = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
${now(4)}local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = math.max(1, math.ceil((cost - tokens) * 1000 / rate - 0.000001))
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return {allowed, string.format('%.17g', tokens), retry}
`;

/**
 * Concurrency slots as a sorted set of permit ids scored by lease expiry: a replica that dies
 * holding permits loses them when their leases run out instead of leaking them forever.
 */
const ACQUIRE = `
local max = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local id = ARGV[3]
${now(4)}redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= max then
  return 0
end
redis.call('ZADD', KEYS[1], now + lease, id)
redis.call('PEXPIRE', KEYS[1], lease)
return 1
`;

/** Extends a held lease (XX: only if the permit still exists), and the key with it. */
const RENEW = `
${now(3)}local n = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return n
`;

const ACTIVE = `
${now(1)}return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
`;

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');
const SHAS = new Map([TAKE, ACQUIRE, RENEW, ACTIVE].map((s) => [s, sha1(s)]));

/** EVALSHA, loading the script on NOSCRIPT (first use, or after the server restarted). */
async function runScript(
  client: Redis,
  script: string,
  key: string,
  args: (string | number)[],
): Promise<unknown> {
  const sha = SHAS.get(script) ?? sha1(script);
  try {
    return await client.evalsha(sha, 1, key, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return client.eval(script, 1, key, ...args);
  }
}

/** Shared options of the Redis limiters. */
export interface RedisLimiterOptions {
  readonly client: Redis;
  /** Key prefix, e.g. `gatehouse:rl:login:`. */
  readonly prefix: string;
  /** When given, its time is used instead of the server's (tests with mocked time). */
  readonly clock?: LimiterClock;
  /** `open` (default) allows requests while Redis is down; `closed` refuses them. */
  readonly failureMode?: 'open' | 'closed';
  readonly log?: Logger;
  /** Called for each Redis failure absorbed by the failure mode. */
  readonly onError?: (error: unknown) => void;
}

function absorb(options: RedisLimiterOptions, op: string, error: unknown): boolean {
  options.onError?.(error);
  options.log?.warn('Rate limiter cannot reach Redis', { op, error: (error as Error).message });
  return (options.failureMode ?? 'open') === 'open';
}

const nowArg = (clock: LimiterClock | undefined) => (clock === undefined ? '' : Math.floor(clock.now()));

/** A token bucket per key in Redis, shared by every replica using the same prefix. */
export function createRedisRateLimiter(options: RedisLimiterOptions & TokenBucketOptions): RateLimiter {
  checkBucketOptions(options);
  const { client, prefix, rate, burst, clock } = options;
  return {
    async take(key, cost = 1): Promise<LimitDecision> {
      checkCost(cost, burst);
      try {
        const [allowed, tokens, retry] = (await runScript(client, TAKE, prefix + key, [
          rate,
          burst,
          cost,
          nowArg(clock),
        ])) as [number, string, number];
        const remaining = Math.floor(Number(tokens));
        return { allowed: allowed === 1, remaining, limit: burst, retryAfterMs: allowed === 1 ? 0 : retry };
      } catch (error) {
        const open = absorb(options, 'take', error);
        return {
          allowed: open,
          remaining: open ? burst - cost : 0,
          limit: burst,
          retryAfterMs: open ? 0 : 1000,
        };
      }
    },
    async reset(key) {
      await client.unlink(prefix + key);
    },
  };
}

/** Options of the Redis concurrency limiter. */
export interface RedisConcurrencyOptions extends RedisLimiterOptions {
  readonly max: number;
  /** How long a permit survives without renewal (default 60 s); renewed every third of it. */
  readonly leaseMs?: number;
}

/** At most `max` concurrent permits per key across every replica. */
export function createRedisConcurrencyLimiter(options: RedisConcurrencyOptions): ConcurrencyLimiter {
  checkMax(options.max);
  const { client, prefix, max, clock } = options;
  const leaseMs = options.leaseMs ?? 60_000;
  return {
    async tryAcquire(key): Promise<Permit | undefined> {
      const id = randomUUID();
      const redisKey = prefix + key;
      try {
        const ok = await runScript(client, ACQUIRE, redisKey, [max, leaseMs, id, nowArg(clock)]);
        if (ok !== 1) return undefined;
      } catch (error) {
        return absorb(options, 'acquire', error) ? oncePermit(() => undefined) : undefined;
      }
      // Long holders (uploads, streams) keep their slot by renewing the lease.
      const renew = setInterval(
        () => {
          runScript(client, RENEW, redisKey, [id, leaseMs, nowArg(clock)]).catch((error: unknown) => {
            options.log?.warn('Cannot renew a concurrency permit', { error: (error as Error).message });
          });
        },
        Math.max(1000, Math.floor(leaseMs / 3)),
      );
      renew.unref();
      return oncePermit(() => {
        clearInterval(renew);
        client.zrem(redisKey, id).catch((error: unknown) => {
          // The lease frees the slot anyway once it runs out.
          options.log?.warn('Cannot release a concurrency permit', { error: (error as Error).message });
        });
      });
    },
    async active(key) {
      return Number(await runScript(client, ACTIVE, prefix + key, [nowArg(clock)]));
    },
  };
}
