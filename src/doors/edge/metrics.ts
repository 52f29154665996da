/**
 * The edge door's metrics (issue item 8), named `gatehouse_edge_<thing>_<unit>`.
 */
import type { Counter, Gauge, Histogram, Metrics } from '#core/metrics';

/** Every metric the door records. */
export interface EdgeMetrics {
  readonly connectionsActive: Gauge;
  readonly routeConnectionsActive: Gauge;
  readonly connectionsTotal: Counter;
  readonly rejected: Counter;
  readonly firewallBlocks: Counter;
  readonly helloFailures: Counter;
  readonly proxyFailures: Counter;
  readonly emptyConnections: Counter;
  readonly dialSeconds: Histogram;
  readonly bytes: Counter;
  readonly httpResponses: Counter;
  readonly policyBlocks: Counter;
  readonly requestLimits: Counter;
}

type Spec = readonly [name: string, help: string, labels: readonly string[]];

const GAUGES = {
  connectionsActive: ['connections_active', 'Open client connections by listener.', ['listener']],
  routeConnectionsActive: [
    'route_connections_active',
    'Open client connections by route.',
    ['listener', 'route'],
  ],
} as const satisfies Record<string, Spec>;

const COUNTERS = {
  connectionsTotal: [
    'connections_total',
    'Client connections routed, by listener, route, mode and how the route matched.',
    ['listener', 'route', 'mode', 'match'],
  ],
  rejected: [
    'connections_rejected_total',
    'Connections closed before routing, by listener and reason.',
    ['listener', 'reason'],
  ],
  firewallBlocks: [
    'firewall_blocks_total',
    'Connections reset by firewall and limits, by reason.',
    ['listener', 'reason'],
  ],
  helloFailures: [
    'client_hello_failures_total',
    'ClientHellos that could not be read, by reason.',
    ['listener', 'reason'],
  ],
  proxyFailures: [
    'proxy_header_failures_total',
    'PROXY protocol headers refused, by reason.',
    ['listener', 'reason'],
  ],
  emptyConnections: [
    'empty_connections_total',
    'Connections closed by the client before sending a byte (TCP health checks), by listener; not audited.',
    ['listener'],
  ],
  bytes: [
    'bytes_total',
    'Bytes relayed by route and direction (in: from clients, out: to clients).',
    ['route', 'direction'],
  ],
  httpResponses: [
    'http_responses_total',
    'L7 responses sent to clients, by route and status.',
    ['route', 'status'],
  ],
  policyBlocks: ['policy_blocks_total', 'L7 requests refused by a route policy.', ['route', 'policy']],
  requestLimits: [
    'request_limits_total',
    'L7 requests stopped by a limit, by route and reason (client-streams: 429; stream-idle: 408 or reset).',
    ['route', 'reason'],
  ],
} as const satisfies Record<string, Spec>;

const DIAL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Registers the metrics; registering twice returns the same ones (doors re-provision in tests). */
export function createEdgeMetrics(metrics: Metrics): EdgeMetrics {
  const options = ([name, help, labels]: Spec) => ({
    name: `gatehouse_edge_${name}`,
    help,
    labelNames: labels,
  });
  const gauges = Object.fromEntries(Object.entries(GAUGES).map(([k, s]) => [k, metrics.gauge(options(s))]));
  const counters = Object.fromEntries(
    Object.entries(COUNTERS).map(([k, s]) => [k, metrics.counter(options(s))]),
  );
  const dialSeconds = metrics.histogram({
    ...options([
      'backend_dial_seconds',
      'Time to connect to a backend, by route and outcome.',
      ['route', 'outcome'],
    ]),
    buckets: DIAL_BUCKETS,
  });
  return { ...gauges, ...counters, dialSeconds } as unknown as EdgeMetrics;
}
