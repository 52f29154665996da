/** One sample of the Prometheus text exposition format. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;

function unescape(text: string): string {
  return text.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  // Label values escape backslash, double quote and newline (Prometheus exposition format, text 0.0.4).
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/gy;
  let consumed = 0;
  for (let match = re.exec(text); match !== null; match = re.exec(text)) {
    labels[match[1] ?? ''] = unescape(match[2] ?? '');
    consumed = re.lastIndex;
  }
  if (consumed !== text.length) throw new SyntaxError(`Malformed labels in exposition line "${line}"`);
  return labels;
}

/**
 * Parses the Prometheus text exposition format into samples. Used by tests and by the
 * `gatehouse` CLI to read a server's `/metrics`; comments and blank lines are skipped.
 */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE_RE.exec(line);
    if (match === null) throw new SyntaxError(`Malformed exposition line "${line}"`);
    const raw = match[3] ?? '';
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    // prom-client writes NaN as `Nan` for an event loop that has not been sampled yet.
    if (Number.isNaN(value) && raw.toLowerCase() !== 'nan')
      throw new SyntaxError(`Malformed sample value in "${line}"`);
    samples.push({ name: match[1] ?? '', labels: parseLabels(match[2] ?? '', line), value });
  }
  return samples;
}

/** The value of the first sample named `name` whose labels include `labels`, or undefined. */
export function sampleValue(
  samples: readonly Sample[],
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number | undefined {
  const found = samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return found?.value;
}
