/** One sample of the Prometheus text exposition format. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricFamily {
  readonly name: string;
  readonly type: string;
  readonly help: string;
  readonly samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

function unescapeLabel(raw: string): string {
  return raw.replace(/\\(\\|"|n)/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(raw: string): number {
  // Exporters write "+Inf"; Go's ParseFloat, which Prometheus uses, also takes "Inf" in any case.
  const lower = raw.toLowerCase();
  if (lower === '+inf' || lower === 'inf') return Number.POSITIVE_INFINITY;
  if (lower === '-inf') return Number.NEGATIVE_INFINITY;
  if (lower === 'nan') return Number.NaN;
  const v = Number(raw);
  if (raw === '' || Number.isNaN(v)) throw new SyntaxError(`Bad sample value "${raw}"`);
  return v;
}

/** Parses `{a="x",b="y"}` starting at `start`; returns the labels and the index after `}`. */
function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return { labels, end: i + 1 };
    const name = NAME.exec(line.slice(i))?.[0];
    if (name === undefined) throw new SyntaxError(`Bad label name in "${line}"`);
    i += name.length;
    if (line[i] !== '=' || line[i + 1] !== '"') throw new SyntaxError(`Bad label "${name}" in "${line}"`);
    i += 2;
    let value = '';
    while (i < line.length && line[i] !== '"') {
      if (line[i] === '\\') {
        value += line.slice(i, i + 2);
        i += 2;
      } else value += line[i++];
    }
    if (line[i] !== '"') throw new SyntaxError(`Unterminated label value in "${line}"`);
    labels[name] = unescapeLabel(value);
    i++;
  }
}

/** The family a sample belongs to: histogram and summary series carry suffixes. */
function familyOf(name: string, families: Map<string, MetricFamily>): string {
  for (const suffix of ['_bucket', '_sum', '_count', '_created', '_total']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      if (families.has(base) && !families.has(name)) return base;
    }
  }
  return name;
}

/**
 * Parses the Prometheus text format (version 0.0.4), which the gateway's `/metrics` answers, so the
 * health page charts it without a server-side JSON view.
 */
export function parsePrometheus(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const family = (name: string) => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, type: 'untyped', help: '', samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const meta = /^#\s+(HELP|TYPE)\s+(\S+)\s*(.*)$/.exec(line);
      if (meta === null) continue;
      const f = family(meta[2] ?? '');
      const rest = meta[3] ?? '';
      families.set(
        f.name,
        meta[1] === 'TYPE' ? { ...f, type: rest } : { ...f, help: rest.replace(/\\n/g, '\n') },
      );
      continue;
    }
    const name = NAME.exec(line)?.[0];
    if (name === undefined) throw new SyntaxError(`Bad metric line "${line}"`);
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') ({ labels, end: i } = parseLabels(line, i));
    const value = line.slice(i).trim().split(/\s+/)[0] ?? '';
    family(familyOf(name, families)).samples.push({ name, labels, value: parseValue(value) });
  }
  return families;
}

/** Sum of a family's samples (optionally only those whose labels match), e.g. a counter across labels. */
export function sumOf(
  families: Map<string, MetricFamily>,
  name: string,
  match: Readonly<Record<string, string>> = {},
  sampleName: string = name,
): number {
  const f = families.get(name);
  if (f === undefined) return 0;
  let total = 0;
  for (const s of f.samples) {
    if (s.name !== sampleName) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}
