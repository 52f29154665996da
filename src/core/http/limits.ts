import type { FastifyReply } from 'fastify';
import { GatewayError } from '#core/errors';
import type { Logger } from '#core/log';
import type { Counter } from '#core/metrics';
import type { RateLimiter } from '#core/ratelimit';
import type { Section, TokenBucketFactory } from './deps.ts';

/** The dynamic `server.rateLimit` section. */
export interface RateLimitSettings {
  readonly rate: number;
  readonly burst: number;
}

/** The general API rate limit: one token bucket per principal, or per client address when anonymous. */
export interface ApiRateLimit {
  /** Takes one token for `key`, sets the RateLimit headers and throws GW_ERR_RATE_LIMITED when empty. */
  enforce(key: string, reply: FastifyReply): Promise<void>;
  close(): void;
}

/**
 * Builds the limiter and rebuilds it when the dynamic section changes. When the limiter's
 * backend (Redis) fails, requests are let through: an unavailable rate limiter must not take
 * the whole API down with it, and the failure is logged and counted.
 */
export function createApiRateLimit(
  section: Section<RateLimitSettings>,
  limiters: TokenBucketFactory,
  log: Logger,
  failures: Counter,
): ApiRateLimit {
  const build = (settings: RateLimitSettings): RateLimiter | undefined =>
    settings.rate === 0
      ? undefined
      : limiters.tokenBucket('http-api', { rate: settings.rate, burst: settings.burst });
  let limiter = build(section.current());
  const unsubscribe = section.subscribe((next) => {
    limiter = build(next);
    log.info('API rate limit changed', { rate: next.rate, burst: next.burst });
  });
  return {
    async enforce(key, reply) {
      const current = limiter;
      if (current === undefined) return;
      let decision;
      try {
        decision = await current.take(key);
      } catch (error) {
        failures.inc({ limiter: 'http-api' });
        log.warn('Rate limiter unavailable; letting the request through', { error });
        return;
      }
      reply.header('ratelimit-limit', String(decision.limit));
      reply.header('ratelimit-remaining', String(Math.max(0, Math.floor(decision.remaining))));
      if (!decision.allowed) {
        const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
        throw new GatewayError('GW_ERR_RATE_LIMITED', {
          message: `Rate limit of ${decision.limit} requests exceeded; retry in ${seconds}s`,
          details: { retryAfterSeconds: seconds },
          headers: { 'retry-after': String(seconds) },
        });
      }
    },
    close: () => {
      unsubscribe();
    },
  };
}
