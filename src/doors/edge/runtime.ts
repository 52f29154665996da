/**
 * What the listeners, the L4 relay and the L7 proxy share at run time. The door builds one
 * runtime from CoreServices; tests can build one from real core parts.
 */
import type { AuditInput } from '#core/audit';
import type { Logger } from '#core/log';
import type { CertificateStore } from './cert-store.ts';
import type { Firewall } from './firewall.ts';
import type { EdgeMetrics } from './metrics.ts';
import type { EdgeRoute } from './model.ts';
import type { RouteTable } from './route-table.ts';

/** The static settings of one listener (a restart changes them) plus its firewall. */
export interface ListenerSettings {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly proxyProtocol: boolean;
  /** Peers allowed to send a PROXY header (addresses or CIDR blocks). */
  readonly trustedProxies: readonly string[];
  readonly preludeTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly responseTimeoutMs: number;
  /** L7 HTTP/1.1: a request head must be complete this long after its first byte (408). */
  readonly requestHeaderTimeoutMs: number;
  /** L7 HTTP/2: a request stream with no HEADERS or DATA either way for this long ends. */
  readonly streamIdleTimeoutMs: number;
  /** L7: requests in flight to backends per client address (all connections of the listener). */
  readonly maxStreamsPerClient: number;
  readonly maxHelloBytes: number;
  readonly minTlsVersion: 'TLSv1.2' | 'TLSv1.3';
  /** HTTP/2 clients of h2c and h2 routes go through the frame relay (ADR 0150). */
  readonly http2Relay: boolean;
}

/** An accepted, routed client connection. */
export interface ConnectionInfo {
  readonly id: number;
  readonly listener: string;
  readonly routeId: string;
  /** The real client (from PROXY when trusted, else the TCP peer). */
  readonly client: { readonly address: string; readonly port: number };
  /** Where the client connected to (from PROXY when trusted, else the local socket). */
  readonly local: { readonly address: string; readonly port: number };
  readonly serverName: string | undefined;
}

/** Shared run-time state; every getter returns the current immutable snapshot. */
export interface EdgeRuntime {
  readonly log: Logger;
  readonly metrics: EdgeMetrics;
  readonly certificates: CertificateStore;
  /** Fire-and-forget audit (the audit port never throws into the request path). */
  audit(event: AuditInput): void;
  /**
   * Audits `edge.backend.failed` for a connection or request the backend could not serve, one by
   * one up to a budget per second and summarised beyond it (a backend that is down would
   * otherwise cost an audit write per request).
   */
  backendFailed(route: EdgeRoute, reason: string, clientIp: string): void;
  /**
   * Counts and audits (`edge.request.limited`, bounded like `backendFailed`) an L7 request a
   * limit stopped: `client-streams` (too many in flight for one client), `client-resets` (its
   * cancels used up its backend reset budget), `stream-idle`, or
   * `header-amplification` (HTTP/2 relay: header blocks that expand far beyond their wire size).
   */
  requestLimited(
    routeId: string,
    reason: 'client-streams' | 'client-resets' | 'stream-idle' | 'header-amplification',
    clientIp: string,
  ): void;
  table(): RouteTable;
  firewall(listener: string): Firewall;
  maxConnections(listener: string): number;
  /** True when the client address may open another connection now. */
  allowConnection(listener: string, address: string): Promise<boolean>;
}
