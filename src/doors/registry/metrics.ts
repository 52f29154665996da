import type { Counter, Gauge, Histogram, Metrics } from '#core/metrics';

/** The registry door's Prometheus metrics, labelled by registry (uplink). */
export interface RegistryMetrics {
  readonly requests: Counter;
  readonly decisions: Counter;
  readonly cache: Counter;
  readonly uplinkLatency: Histogram;
  readonly breaker: Gauge;
  readonly integrityFailures: Counter;
}

export function createRegistryMetrics(m: Metrics): RegistryMetrics {
  return {
    requests: m.counter({
      name: 'gatehouse_registry_requests_total',
      help: 'Registry requests by registry, ecosystem, kind (metadata, file, other) and status',
      labelNames: ['registry', 'ecosystem', 'kind', 'status'],
    }),
    decisions: m.counter({
      name: 'gatehouse_registry_decisions_total',
      help: 'Policy rule results by registry, rule and outcome',
      labelNames: ['registry', 'rule', 'outcome'],
    }),
    cache: m.counter({
      name: 'gatehouse_registry_cache_total',
      help: 'Metadata and file cache lookups by registry and result (hit, miss, stale, not_modified; coalesced: a file miss that joined a download in flight)',
      labelNames: ['registry', 'kind', 'result'],
    }),
    uplinkLatency: m.histogram({
      name: 'gatehouse_registry_uplink_duration_seconds',
      help: 'Time to the response headers of uplink requests',
      labelNames: ['uplink', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    }),
    breaker: m.gauge({
      name: 'gatehouse_registry_uplink_breaker_state',
      help: 'Circuit breaker state per uplink: 0 closed, 1 half-open, 2 open',
      labelNames: ['uplink'],
    }),
    integrityFailures: m.counter({
      name: 'gatehouse_registry_integrity_failures_total',
      help: 'Downloads aborted because their digest did not match the metadata',
      labelNames: ['registry'],
    }),
  };
}
