import type { Counter, Gauge, Histogram, Metrics } from '#core/metrics';

/** The door's metrics (ARCHITECTURE.md names: `gatehouse_<door>_<thing>_<unit>`). */
export interface ArtifactMetrics {
  readonly bytesIn: Counter;
  readonly bytesOut: Counter;
  readonly uploads: Counter;
  readonly downloads: Counter;
  readonly scanQueueDepth: Gauge;
  readonly scanDuration: Histogram;
  readonly verdicts: Counter;
  readonly signatureChecks: Counter;
}

/** Registers the door's metrics; registering twice returns the same ones. */
export function createArtifactMetrics(metrics: Metrics): ArtifactMetrics {
  return {
    bytesIn: metrics.counter({ name: 'gatehouse_artifacts_bytes_in_total', help: 'Artifact bytes received' }),
    bytesOut: metrics.counter({ name: 'gatehouse_artifacts_bytes_out_total', help: 'Artifact bytes served' }),
    uploads: metrics.counter({
      name: 'gatehouse_artifacts_uploads_total',
      help: 'Uploads by result',
      labelNames: ['result'],
    }),
    downloads: metrics.counter({
      name: 'gatehouse_artifacts_downloads_total',
      help: 'Downloads by result',
      labelNames: ['result'],
    }),
    scanQueueDepth: metrics.gauge({ name: 'gatehouse_artifacts_scan_queue_depth', help: 'Queued scans' }),
    scanDuration: metrics.histogram({
      name: 'gatehouse_artifacts_scan_duration_seconds',
      help: 'Scan duration by scanner and result',
      labelNames: ['scanner', 'result'],
      buckets: [0.05, 0.25, 1, 5, 15, 60, 300],
    }),
    verdicts: metrics.counter({
      name: 'gatehouse_artifacts_verdicts_total',
      help: 'Policy verdicts by status and source',
      labelNames: ['status', 'by'],
    }),
    signatureChecks: metrics.counter({
      name: 'gatehouse_artifacts_signature_checks_total',
      help: 'Trust policy checks by result',
      labelNames: ['result'],
    }),
  };
}
