/**
 * CVSS vector parsing. v3.0/v3.1 base scores follow the FIRST specification §7 formulas;
 * v4.0 vectors are validated and their metrics exposed (v4 scoring needs FIRST's macro-vector
 * table, so a v4-only advisory is ranked by the qualitative severity its source gives).
 */

/** The qualitative severity scale shared by CVSS v3 and v4 (§5 of each specification). */
export const SEVERITIES = ['none', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** A parsed vector: its version, metrics and (v3) base score. */
export interface CvssVector {
  readonly version: '3.0' | '3.1' | '4.0';
  readonly metrics: Readonly<Record<string, string>>;
  /** Base score 0.0–10.0 (v3 only). */
  readonly baseScore?: number;
}

const V3_VALUES: Readonly<Record<string, readonly string[]>> = {
  AV: ['N', 'A', 'L', 'P'],
  AC: ['L', 'H'],
  PR: ['N', 'L', 'H'],
  UI: ['N', 'R'],
  S: ['U', 'C'],
  C: ['H', 'L', 'N'],
  I: ['H', 'L', 'N'],
  A: ['H', 'L', 'N'],
};

const V4_VALUES: Readonly<Record<string, readonly string[]>> = {
  AV: ['N', 'A', 'L', 'P'],
  AC: ['L', 'H'],
  AT: ['N', 'P'],
  PR: ['N', 'L', 'H'],
  UI: ['N', 'P', 'A'],
  VC: ['H', 'L', 'N'],
  VI: ['H', 'L', 'N'],
  VA: ['H', 'L', 'N'],
  SC: ['H', 'L', 'N'],
  SI: ['H', 'L', 'N'],
  SA: ['H', 'L', 'N'],
};

const W = {
  AV: { N: 0.85, A: 0.62, L: 0.55, P: 0.2 },
  AC: { L: 0.77, H: 0.44 },
  UI: { N: 0.85, R: 0.62 },
  CIA: { H: 0.56, L: 0.22, N: 0 },
} as const;

/** CVSS v3.1 Roundup (Appendix A): the smallest one-decimal number not below the input. */
export function roundUp(value: number): number {
  const int = Math.round(value * 100_000);
  return int % 10_000 === 0 ? int / 100_000 : (Math.floor(int / 10_000) + 1) / 10;
}

function v3Score(m: Readonly<Record<string, string>>): number {
  const changed = m['S'] === 'C';
  const pr = m['PR'] === 'N' ? 0.85 : m['PR'] === 'L' ? (changed ? 0.68 : 0.62) : changed ? 0.5 : 0.27;
  const cia = (k: string) => W.CIA[m[k] as keyof typeof W.CIA];
  const iss = 1 - (1 - cia('C')) * (1 - cia('I')) * (1 - cia('A'));
  const impact = changed ? 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 : 6.42 * iss;
  const exploitability =
    8.22 *
    W.AV[m['AV'] as keyof typeof W.AV] *
    W.AC[m['AC'] as keyof typeof W.AC] *
    pr *
    W.UI[m['UI'] as keyof typeof W.UI];
  if (impact <= 0) return 0;
  return changed
    ? roundUp(Math.min(1.08 * (impact + exploitability), 10))
    : roundUp(Math.min(impact + exploitability, 10));
}

/** Parses `CVSS:3.1/AV:N/…` or `CVSS:4.0/AV:N/…`; undefined when malformed or incomplete. */
export function parseCvss(vector: string): CvssVector | undefined {
  if (vector.length > 512) return undefined;
  const parts = vector.trim().split('/');
  const head = /^CVSS:(3\.0|3\.1|4\.0)$/.exec(parts[0] ?? '');
  if (head === null) return undefined;
  const version = head[1] as CvssVector['version'];
  const required = version === '4.0' ? V4_VALUES : V3_VALUES;
  const metrics: Record<string, string> = {};
  for (const part of parts.slice(1)) {
    const [key, value, extra] = part.split(':');
    if (key === undefined || value === undefined || extra !== undefined || Object.hasOwn(metrics, key))
      return undefined;
    const allowed = required[key];
    if (allowed !== undefined && !allowed.includes(value)) return undefined;
    metrics[key] = value;
  }
  if (!Object.keys(required).every((k) => Object.hasOwn(metrics, k))) return undefined;
  if (version === '4.0') return { version, metrics };
  return { version, metrics, baseScore: v3Score(metrics) };
}

/** The qualitative rating of a score (identical bands in CVSS v3 and v4). */
export function severityOfScore(score: number): Severity {
  if (score === 0) return 'none';
  if (score < 4) return 'low';
  if (score < 7) return 'medium';
  if (score < 9) return 'high';
  return 'critical';
}

/** Orders severities: negative when `a` is less severe than `b`. */
export const compareSeverity = (a: Severity, b: Severity): number =>
  SEVERITIES.indexOf(a) - SEVERITIES.indexOf(b);

/** Maps source labels (`MODERATE`, `HIGH`, GitHub and OSV spellings) to the scale. */
export function parseSeverityLabel(label: unknown): Severity | undefined {
  if (typeof label !== 'string') return undefined;
  const t = label.trim().toLowerCase();
  if (t === 'moderate') return 'medium';
  if (t === 'important') return 'high';
  return (SEVERITIES as readonly string[]).includes(t) ? (t as Severity) : undefined;
}
