import type { ConnectError } from '@connectrpc/connect';
import type { CoreServices } from '#core/app';
import type { Credentials, PeerCertificateInfo } from '#core/auth';
import { GatewayError, isGatewayError } from '#core/errors';
import type { Counter, Gauge, Histogram } from '#core/metrics';
import { anonymousClientKey } from '#core/ratelimit';
import type { Action, Principal } from '#core/rbac';
import type { KvAuditor } from './audit.ts';
import type { KvLimits } from './config.ts';
import type { PrincipalCache } from './principal-cache.ts';
import { CLIENT_ENDED, statusName, toConnectError } from './errors.ts';
import { checkNamespace } from './validate.ts';

/** What the transport knows about the caller before any credential is checked. */
export interface CallPeer {
  readonly clientIp: string;
  /** Present only when the TLS layer verified the client certificate against the trusted CAs. */
  readonly certificate?: PeerCertificateInfo;
}

/**
 * What a method needs from the transport that carries the call: the Connect handler (Connect,
 * gRPC-Web, gRPC+JSON) and the direct gRPC path (`grpc-direct.ts`) each build one per call.
 */
export interface KvCallContext {
  readonly peer: CallPeer;
  readonly requestHeader: { get(name: string): string | null };
  readonly responseHeader: { set(name: string, value: string): void };
  /**
   * The signal of one backend call: it aborts after `ms`, or earlier when the client cancels
   * or its own deadline passes. A plain function (no `this`).
   */
  readonly within: (ms: number) => AbortSignal;
  /** Whether the client's deadline passed or it cancelled the call (then nothing it gets matters). */
  readonly ended: () => 'deadline' | 'cancelled' | undefined;
}

/** The metrics named by issue 5, item 9. */
export interface KvMetrics {
  readonly requests: Counter;
  readonly duration: Histogram;
  readonly authFailures: Counter;
  readonly activeConnections: Gauge;
  readonly driverDuration: Histogram;
}

/** One authorized call, as a handler sees it. */
export interface GuardedCall {
  readonly principal: Principal;
  readonly namespace: string;
  /** See `KvCallContext.within`. */
  readonly within: (ms: number) => AbortSignal;
}

export interface GuardOptions {
  readonly core: Pick<CoreServices, 'auth' | 'authorize' | 'log' | 'limiters'>;
  readonly auditor: KvAuditor;
  /** Reuse of recent successful authentications; absent means every call is verified. */
  readonly principalCache?: PrincipalCache;
  readonly limits: () => KvLimits;
  readonly metrics: KvMetrics;
}

/** Byte counts of a call for the namespace bandwidth limit, and its weight for the rate limit. */
export interface Sizes<I, O> {
  request(message: I): number;
  response(message: O): number;
  /**
   * Batch methods: how many keys or items the call carries (the field that holds them), each
   * charged as one request against the per-client token bucket. Other calls cost one.
   */
  readonly items?: { readonly field: string; count(message: I): number };
}

const BEARER = /^Bearer\s+(\S+)$/i;
const MAX_NAMESPACE_LABELS = 1000;

function credentialsOf(authorization: string, apiKey: string, peer: CallPeer): Credentials {
  const bearer = BEARER.exec(authorization)?.[1];
  return {
    ...(bearer === undefined ? {} : { bearer }),
    ...(apiKey === '' ? {} : { apiKey }),
    ...(peer.certificate === undefined ? {} : { certificate: peer.certificate }),
    clientIp: peer.clientIp,
  };
}

function limited(code: 'GW_ERR_RATE_LIMITED' | 'GW_ERR_KV_BANDWIDTH_EXCEEDED', retryAfterMs: number) {
  return new GatewayError(code, {
    message:
      code === 'GW_ERR_RATE_LIMITED' ? 'Too many requests from this client' : 'Namespace bandwidth exceeded',
    details: { retryAfterMs },
    headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
  });
}

/**
 * Wraps every RPC handler with the door's security pipeline, in this order: shed beyond the
 * in-flight cap, authenticate, the per-client token bucket, validate the namespace, authorize
 * per namespace (audited either way), the per-namespace bandwidth bucket. Then the handler
 * runs, and whatever it throws is mapped once to a gRPC status. Quota headers go on every
 * answer to an authenticated caller, refusals included.
 */
export function createGuard(options: GuardOptions) {
  const { core, metrics, auditor } = options;
  const log = core.log;
  let inFlight = 0;

  const principals = options.principalCache;
  // A principal bound to "*" could mint a metric series per namespace it invents; past this many
  // distinct namespaces the label becomes "_other".
  const labels = new Set<string>();
  const labelOf = (namespace: string) => {
    if (labels.has(namespace)) return namespace;
    if (labels.size >= MAX_NAMESPACE_LABELS) return '_other';
    labels.add(namespace);
    return namespace;
  };
  const authenticate = async (ctx: KvCallContext, peer: CallPeer, method: string, limits: KvLimits) => {
    const authorization = ctx.requestHeader.get('authorization') ?? '';
    const apiKey = ctx.requestHeader.get('x-api-key') ?? '';
    // Several values of one credential header arrive joined by ", " (the listener joins the
    // Authorization headers that node:http2 would reduce to the first): which one counts would
    // depend on who reads them (a proxy in front may have checked another), so none does. Such
    // a call skips the cache and is refused as a failed verification (rate-limited, audited).
    // Neither a bearer token nor an API key ever contains a comma.
    const several = authorization.includes(',')
      ? new GatewayError('GW_ERR_AUTH_TOKEN_INVALID', { message: 'More than one Authorization header' })
      : apiKey.includes(',')
        ? new GatewayError('GW_ERR_AUTH_KEY_INVALID', { message: 'More than one x-api-key header' })
        : undefined;
    // The peer object is the connection's (one per HTTP/2 session): the same header values on
    // it are the same credentials, and the cache answers without parsing them again.
    const recent = several === undefined ? principals?.recent(peer, authorization, apiKey) : undefined;
    if (recent !== undefined) return recent;
    const credentials = credentialsOf(authorization, apiKey, peer);
    const via = { connection: peer, authorization, apiKey };
    const cached = several === undefined ? principals?.get(credentials, via) : undefined;
    if (cached !== undefined) return cached;
    const rate = limits.authenticationsPerIp;
    const attempt = await core.limiters
      .tokenBucket('kv-authn', { rate, burst: rate * 2 })
      // Keyed as the core keys anonymous clients: an IPv6 host holds a whole /64, and keyed per
      // address it would have 2^64 budgets of verifications.
      .take(peer.clientIp === '' ? 'unknown' : anonymousClientKey(peer.clientIp));
    if (!attempt.allowed) throw limited('GW_ERR_RATE_LIMITED', attempt.retryAfterMs);
    try {
      if (several !== undefined) throw several;
      const verify = () => core.auth.authenticate(credentials);
      return await (principals === undefined ? verify() : principals.load(credentials, verify, via));
    } catch (error) {
      const code = isGatewayError(error) ? error.code : 'GW_ERR_INTERNAL';
      metrics.authFailures.inc({ reason: code.replace(/^GW_ERR_/, '').toLowerCase() });
      auditor.deny({
        actor: 'anonymous',
        action: 'kv.authenticate',
        resource: `kv:${method}`,
        decision: 'deny',
        reason: code,
        clientIp: peer.clientIp,
      });
      throw error;
    }
  };

  const authorize = (
    principal: Principal,
    action: Action,
    namespace: string,
    method: string,
    peer: CallPeer,
  ) => {
    const decision = core.authorize(principal, action, { type: 'kv-namespace', namespace });
    const event = {
      actor: principal.id,
      action: `kv.${method}`,
      resource: `kv:${namespace}`,
      decision: decision.allowed ? ('allow' as const) : ('deny' as const),
      reason: decision.reason,
      clientIp: peer.clientIp,
    };
    if (decision.allowed) auditor.allow(event);
    else auditor.deny(event);
    if (!decision.allowed) {
      throw new GatewayError('GW_ERR_RBAC_DENIED', {
        message: `Permission "${action}" on namespace "${namespace}" denied`,
        details: { action, namespace },
      });
    }
  };

  return function guard<I extends { namespace: string }, O>(
    method: string,
    action: Action,
    sizes: Sizes<I, O>,
    handler: (message: I, call: GuardedCall) => Promise<O>,
  ): (message: I, ctx: KvCallContext) => Promise<O> {
    return async (message, ctx) => {
      const limits = options.limits();
      const peer = ctx.peer;
      const quota: Record<string, string> = {};
      // A refused call counts under its namespace when an allowed call made it a label already
      // (the refusal mints no new series), otherwise under "".
      let namespaceLabel = labels.has(message.namespace) ? message.namespace : '';
      const stop = metrics.duration.startTimer({ method });
      let status = 'OK';
      inFlight += 1;
      try {
        if (inFlight > limits.maxInFlight) {
          throw new GatewayError('GW_ERR_OVERLOADED', { message: 'Too many calls in flight' });
        }
        if (auditor.backlogged()) {
          throw new GatewayError('GW_ERR_OVERLOADED', { message: 'Audit log is behind; call shed' });
        }
        const principal = await authenticate(ctx, peer, method, limits);
        // Every authenticated call is charged before it is judged: a call refused for its
        // namespace or its permissions costs its sender as much as a served one (each refusal
        // writes an audit event, so free refusals could flood the audit log).
        // A batch costs a request per key or item, so batching does not multiply the quota; the
        // handler refuses more than maxBatchItems with its own message.
        const cost = Math.max(1, Math.min(sizes.items?.count(message) ?? 1, limits.maxBatchItems));
        if (cost > limits.burst) {
          throw new GatewayError('GW_ERR_KV_INVALID_ARGUMENT', {
            message: `${sizes.items?.field}: a batch of ${cost} exceeds the per-client burst of ${limits.burst} requests`,
            details: { field: sizes.items?.field, limit: limits.burst },
          });
        }
        const rate = await core.limiters
          .tokenBucket('kv-client', { rate: limits.requestsPerSecond, burst: limits.burst })
          .take(principal.id, cost);
        quota['ratelimit-limit'] = String(rate.limit);
        quota['ratelimit-remaining'] = String(Math.max(0, Math.floor(rate.remaining)));
        if (!rate.allowed) throw limited('GW_ERR_RATE_LIMITED', rate.retryAfterMs);
        const namespace = checkNamespace(message.namespace);
        authorize(principal, action, namespace, method, peer);
        namespaceLabel = labelOf(namespace);
        const bandwidthBurst = Math.max(limits.namespaceBandwidth, limits.maxValueSize * 2);
        const bandwidth = core.limiters.tokenBucket('kv-bandwidth', {
          rate: limits.namespaceBandwidth,
          burst: bandwidthBurst,
        });
        // Charges bytes in slices the bucket can hold; more than it holds empties it.
        const charge = async (bytes: number) => {
          for (let left = bytes; left > 0; ) {
            const slice = Math.min(left, bandwidthBurst);
            left -= slice;
            if (!(await bandwidth.take(namespace, slice)).allowed) break;
          }
        };
        // A request passes when the bucket holds it, or is full for one larger than it ever holds
        // (limits lowered below what a message may carry): that one empties it.
        const requestBytes = Math.max(1, sizes.request(message));
        const admitted = Math.min(requestBytes, bandwidthBurst);
        const inbound = await bandwidth.take(namespace, admitted);
        if (!inbound.allowed) throw limited('GW_ERR_KV_BANDWIDTH_EXCEEDED', inbound.retryAfterMs);
        await charge(requestBytes - admitted);
        const out = await handler(message, { principal, namespace, within: ctx.within });
        // Responses are charged after the fact: the bytes were already read from the backend,
        // so an exhausted budget refuses the namespace's next calls instead.
        await charge(sizes.response(out));
        for (const [k, v] of Object.entries(quota)) ctx.responseHeader.set(k, v);
        return out;
      } catch (thrown) {
        // A backend call stopped by the client's own deadline or cancel is not a backend failure.
        const ended = ctx.ended();
        const cause = ended === undefined ? thrown : new GatewayError(CLIENT_ENDED[ended], { cause: thrown });
        const { error } = toConnectError(cause, log, quota);
        status = statusName(error.code);
        throw error satisfies ConnectError;
      } finally {
        inFlight -= 1;
        stop({ namespace: namespaceLabel });
        metrics.requests.inc({ method, status, namespace: namespaceLabel });
      }
    };
  };
}

export type Guard = ReturnType<typeof createGuard>;
