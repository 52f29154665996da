/**
 * core/metrics: the Prometheus registry served at `/metrics`.
 * @module
 */
export type { Counter, Gauge, Histogram, Labels, MetricOptions, Metrics } from './port.ts';
/** Creates a private prom-client registry behind the Metrics port. */
export { createMetrics, type MetricsOptions } from './prometheus.ts';
/** Parses Prometheus text exposition, for tests and the CLI. */
export { parseExposition, type Sample, sampleValue } from './exposition.ts';
