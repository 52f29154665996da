import { setTimeout as delay } from 'node:timers/promises';
import { Agent, type Dispatcher } from 'undici';
import type { Clock } from '#core/app';
import { GatewayError } from '#core/errors';
import type { Histogram } from '#core/metrics';
import type { UplinkConfig } from '../config.ts';
import { type BreakerState, CircuitBreaker } from './breaker.ts';

/** An upstream response whose body is still to be read. */
export interface UplinkResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Dispatcher.ResponseData['body'];
  readonly url: string;
}

export interface UplinkRequest {
  readonly url: string;
  readonly method?: 'GET' | 'HEAD';
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  /** What the request fetches, for messages (`"lodash"`, `"lodash-4.17.21.tgz"`). */
  readonly what: string;
}

const RETRY_STATUS = new Set([502, 503, 504]);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 3;

export interface UplinkClientOptions {
  readonly config: UplinkConfig;
  readonly clock: Clock;
  readonly latency?: Histogram;
  readonly onBreakerChange?: (uplink: string, state: BreakerState) => void;
  /** Replaceable for tests of the retry schedule. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * One uplink: an undici keep-alive Agent with connect/header/body timeouts, retries with
 * exponential backoff and jitter for idempotent requests, and a circuit breaker. Credentials go
 * only to the uplink's own origin, never to a file host the metadata points at.
 */
export class UplinkClient {
  readonly name: string;
  readonly config: UplinkConfig;
  readonly breaker: CircuitBreaker;
  readonly #agent: Agent;
  readonly #origin: string;
  readonly #auth: string | undefined;
  readonly #o: UplinkClientOptions;

  constructor(options: UplinkClientOptions) {
    const c = options.config;
    this.name = c.name;
    this.config = c;
    this.#o = options;
    this.#origin = new URL(c.url).origin;
    this.#agent = new Agent({
      connections: c.connections,
      keepAliveTimeout: 30_000,
      headersTimeout: c.headersTimeout,
      bodyTimeout: c.bodyTimeout,
      connect: { timeout: c.connectTimeout },
    });
    if (c.token !== undefined) this.#auth = `Bearer ${c.token}`;
    else if (c.username !== undefined) {
      this.#auth = `Basic ${Buffer.from(`${c.username}:${c.password ?? ''}`).toString('base64')}`;
    }
    this.breaker = new CircuitBreaker({
      clock: options.clock,
      failures: c.breakerFailures,
      cooldownMs: c.breakerCooldown,
      onChange: (s) => options.onBreakerChange?.(c.name, s),
    });
  }

  /**
   * Whether a file URL from upstream metadata may be fetched: only from the uplink's own origin
   * or a configured file origin, so a tampered packument cannot make Gatehouse fetch from
   * internal addresses (server-side request forgery).
   */
  allows(url: string): boolean {
    let origin: string;
    try {
      origin = new URL(url).origin;
    } catch {
      return false;
    }
    return origin === this.#origin || this.config.fileOrigins.includes(origin);
  }

  /**
   * Requests a file, following redirects (repository managers with cloud storage, code hosts
   * and Athens send downloads to a storage host) at most MAX_REDIRECTS times, to the uplink's
   * own origin and its file origins only, as `allows` permits a file URL from metadata; a
   * storage host gets no uplink credentials (`#send` sends them to the uplink's origin only).
   */
  async requestFile(req: UplinkRequest): Promise<UplinkResponse> {
    let res = await this.request(req);
    for (let hops = 0; REDIRECTS.has(res.status); hops++) {
      const location = res.headers['location'];
      await res.body.dump().catch(() => undefined);
      const next = typeof location === 'string' ? URL.parse(location, res.url) : null;
      const why =
        next === null
          ? 'without a usable Location'
          : hops === MAX_REDIRECTS
            ? `more than ${MAX_REDIRECTS} times`
            : this.allows(next.toString())
              ? undefined
              : `to "${next.origin}", outside the uplink; add the origin to fileOrigins to allow it`;
      if (why !== undefined || next === null)
        throw new GatewayError('GW_ERR_REGISTRY_UPSTREAM_INVALID', {
          message: `Uplink "${this.name}" redirected "${req.what}" ${why ?? ''}`,
          details: { uplink: this.name, status: res.status },
        });
      res = await this.request({ ...req, url: next.toString() });
    }
    return res;
  }

  /** Resolves a path or URL against the uplink base (`lodash` → `<url>/lodash`). */
  resolve(pathOrUrl: string): string {
    const base = this.config.url.endsWith('/') ? this.config.url : `${this.config.url}/`;
    return new URL(pathOrUrl, base).toString();
  }

  /**
   * Sends a request; retries connection errors and 502/503/504 before any body byte is read.
   * Throws GW_ERR_REGISTRY_UPLINK_UNAVAILABLE (breaker open or every attempt failed) or
   * GW_ERR_REGISTRY_UPLINK_TIMEOUT.
   */
  async request(req: UplinkRequest): Promise<UplinkResponse> {
    const attempts = this.config.retries + 1;
    let last: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        const base = this.config.retryBackoff * 2 ** (attempt - 1);
        const wait = Math.round(base * (0.5 + Math.random()));
        await (this.#o.sleep ?? ((ms, signal) => delay(ms, undefined, { signal })))(wait, req.signal);
      }
      if (!this.breaker.tryAcquire()) {
        throw new GatewayError('GW_ERR_REGISTRY_UPLINK_UNAVAILABLE', {
          message: `Cannot fetch "${req.what}" from uplink "${this.name}": circuit breaker open`,
          details: { uplink: this.name, retryInMs: this.breaker.retryInMs() },
          headers: { 'retry-after': String(Math.ceil(this.breaker.retryInMs() / 1000)) },
        });
      }
      const stop = this.#o.latency?.startTimer({ uplink: this.name });
      try {
        const res = await this.#send(req);
        // 501 Not Implemented is an answer, not a fault: a server that does not do HEAD (its
        // caller then falls back) is up, and asking again gets the same answer.
        if (RETRY_STATUS.has(res.status) || (res.status >= 500 && res.status !== 501)) {
          stop?.({ outcome: String(res.status) });
          this.breaker.failure();
          last = res.status;
          if (attempt + 1 < attempts) {
            await res.body.dump().catch(() => undefined);
            continue;
          }
          return res;
        }
        stop?.({ outcome: String(res.status) });
        this.breaker.success();
        return res;
      } catch (error) {
        stop?.({ outcome: 'error' });
        if (req.signal?.aborted === true) {
          this.breaker.release();
          throw error;
        }
        this.breaker.failure();
        last = error;
      }
    }
    throw this.#failure(req, last);
  }

  #send(req: UplinkRequest): Promise<UplinkResponse> {
    const url = new URL(req.url);
    const headers: Record<string, string> = { 'user-agent': 'gatehouse-registry', ...req.headers };
    if (this.#auth !== undefined && url.origin === this.#origin) headers['authorization'] = this.#auth;
    return this.#agent
      .request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: req.method ?? 'GET',
        headers,
        ...(req.signal === undefined ? {} : { signal: req.signal }),
      })
      .then((r) => ({ status: r.statusCode, headers: r.headers, body: r.body, url: req.url }));
  }

  #failure(req: UplinkRequest, last: unknown): GatewayError {
    const code = (last as { code?: string } | undefined)?.code ?? '';
    if (code.includes('TIMEOUT')) {
      return new GatewayError('GW_ERR_REGISTRY_UPLINK_TIMEOUT', {
        message: `Cannot fetch "${req.what}" from uplink "${this.name}": timed out`,
        details: { uplink: this.name },
        cause: last,
      });
    }
    const why = typeof last === 'number' ? `status ${last}` : code === '' ? 'connection failed' : code;
    return new GatewayError('GW_ERR_REGISTRY_UPLINK_UNAVAILABLE', {
      message: `Cannot fetch "${req.what}" from uplink "${this.name}": ${why}`,
      details: { uplink: this.name },
      cause: last,
    });
  }

  get breakerState(): BreakerState {
    return this.breaker.state;
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}
