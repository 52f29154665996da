import * as prom from 'prom-client';
import type { Counter, Gauge, Histogram, Labels, MetricOptions, Metrics } from './port.ts';

/** Options of `createMetrics`. */
export interface MetricsOptions {
  /** Collect the default process metrics (CPU, memory, event loop, GC) with the `gatehouse_` prefix. */
  readonly processMetrics?: boolean;
}

type Kind = 'counter' | 'gauge' | 'histogram';

interface Entry {
  readonly kind: Kind;
  readonly labelNames: readonly string[];
  readonly metric: Counter | Gauge | Histogram;
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function checkOptions(options: MetricOptions): readonly string[] {
  if (!NAME_RE.test(options.name)) {
    throw new TypeError(`Metric name "${options.name}" is not a valid Prometheus name`);
  }
  const labelNames = options.labelNames ?? [];
  for (const label of labelNames) {
    if (!LABEL_RE.test(label) || label.startsWith('__')) {
      throw new TypeError(`Label "${label}" of metric "${options.name}" is not a valid Prometheus label`);
    }
  }
  return labelNames;
}

// prom-client accepts string or number label values, which is what Labels allows.
const toLabels = (labels: Labels | undefined): prom.LabelValues<string> => labels ?? {};

function wrapCounter(c: prom.Counter): Counter {
  return { inc: (labels, value = 1) => c.inc(toLabels(labels), value) };
}

function wrapGauge(g: prom.Gauge): Gauge {
  return {
    set: (labels, value) => g.set(toLabels(labels), value),
    inc: (labels, value = 1) => g.inc(toLabels(labels), value),
    dec: (labels, value = 1) => g.dec(toLabels(labels), value),
  };
}

function wrapHistogram(h: prom.Histogram): Histogram {
  return {
    observe: (labels, value) => h.observe(toLabels(labels), value),
    startTimer: (labels) => {
      const end = h.startTimer(toLabels(labels));
      return (extra) => end(toLabels(extra));
    },
  };
}

/**
 * A Metrics registry over prom-client. Each instance owns a private registry (never the
 * global one) so that tests and several gateways in one process do not share counters, and no
 * prom-client type leaves this module.
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new prom.Registry();
  if (options.processMetrics ?? true)
    prom.collectDefaultMetrics({ register: registry, prefix: 'gatehouse_' });
  const entries = new Map<string, Entry>();

  function define<M extends Counter | Gauge | Histogram>(
    kind: Kind,
    metricOptions: MetricOptions,
    build: (labelNames: string[]) => M,
  ): M {
    const labelNames = checkOptions(metricOptions);
    const existing = entries.get(metricOptions.name);
    if (existing !== undefined) {
      const sameLabels = existing.labelNames.join(',') === labelNames.join(',');
      if (existing.kind !== kind || !sameLabels) {
        throw new TypeError(
          `Metric "${metricOptions.name}" is already registered as a ${existing.kind} with labels "${existing.labelNames.join(',')}"`,
        );
      }
      return existing.metric as M;
    }
    if (registry.getSingleMetric(metricOptions.name) !== undefined) {
      throw new TypeError(`Metric "${metricOptions.name}" clashes with a process metric`);
    }
    const metric = build([...labelNames]);
    entries.set(metricOptions.name, { kind, labelNames, metric });
    return metric;
  }

  return {
    counter: (o) =>
      define('counter', o, (labelNames) =>
        wrapCounter(new prom.Counter({ name: o.name, help: o.help, labelNames, registers: [registry] })),
      ),
    gauge: (o) =>
      define('gauge', o, (labelNames) =>
        wrapGauge(new prom.Gauge({ name: o.name, help: o.help, labelNames, registers: [registry] })),
      ),
    histogram: (o) =>
      define('histogram', o, (labelNames) =>
        wrapHistogram(
          new prom.Histogram({
            name: o.name,
            help: o.help,
            labelNames,
            registers: [registry],
            ...(o.buckets === undefined ? {} : { buckets: [...o.buckets] }),
          }),
        ),
      ),
    render: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
  };
}
