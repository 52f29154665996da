export type Labels = Readonly<Record<string, string | number>>;

export interface Counter {
  inc(labels?: Labels, value?: number): void;
}

export interface Gauge {
  set(labels: Labels, value: number): void;
  inc(labels?: Labels, value?: number): void;
  dec(labels?: Labels, value?: number): void;
}

export interface Histogram {
  observe(labels: Labels, value: number): void;
  /** Starts a timer; calling the result observes the elapsed seconds. */
  startTimer(labels?: Labels): (extra?: Labels) => number;
}

export interface MetricOptions {
  /** `gatehouse_<door>_<thing>_<unit>` (ARCHITECTURE.md style), or a seed-fixed name. */
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
}

/**
 * The metrics registry, exposed at `/metrics` in the Prometheus text format. Registering the
 * same name twice returns the existing metric (doors can be re-provisioned in tests).
 */
export interface Metrics {
  counter(options: MetricOptions): Counter;
  gauge(options: MetricOptions): Gauge;
  histogram(options: MetricOptions & { readonly buckets?: readonly number[] }): Histogram;
  /** The exposition text and its content type. */
  render(): Promise<{ readonly contentType: string; readonly body: string }>;
}
