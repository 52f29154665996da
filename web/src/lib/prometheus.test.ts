import fc from 'fast-check';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { cacheStats } from '../pages/registry.tsx';
import { parsePrometheus, sumOf } from './prometheus.ts';

describe('parsePrometheus', () => {
  it('reads what prom-client (the gateway exporter) writes', async () => {
    const registry = new Registry();
    const requests = new Counter({
      name: 'gatehouse_http_requests_total',
      help: 'Requests',
      labelNames: ['status', 'route'],
      registers: [registry],
    });
    requests.inc({ status: '200', route: '/a "quoted"\\path' }, 5);
    requests.inc({ status: '503', route: '/b' }, 2);
    new Gauge({ name: 'gatehouse_http_requests_in_flight', help: 'In flight', registers: [registry] }).set(3);
    const h = new Histogram({
      name: 'gatehouse_scan_seconds',
      help: 'Scan\nduration',
      buckets: [0.1, 1],
      registers: [registry],
    });
    h.observe(0.5);
    h.observe(2);
    const families = parsePrometheus(await registry.metrics());
    expect(families.get('gatehouse_http_requests_total')?.type).toBe('counter');
    expect(sumOf(families, 'gatehouse_http_requests_total')).toBe(7);
    expect(sumOf(families, 'gatehouse_http_requests_total', { status: '503' })).toBe(2);
    expect(families.get('gatehouse_http_requests_total')?.samples.map((s) => s.labels['route'])).toContain(
      '/a "quoted"\\path',
    );
    expect(sumOf(families, 'gatehouse_http_requests_in_flight')).toBe(3);
    const hist = families.get('gatehouse_scan_seconds');
    expect(hist?.type).toBe('histogram');
    expect(sumOf(families, 'gatehouse_scan_seconds', {}, 'gatehouse_scan_seconds_count')).toBe(2);
    expect(sumOf(families, 'gatehouse_scan_seconds', { le: '+Inf' }, 'gatehouse_scan_seconds_bucket')).toBe(
      2,
    );
  });

  it('round-trips generated samples', () => {
    const name = fc.stringMatching(/^[a-z_][a-z0-9_]{0,20}$/);
    const labelValue = fc.string({ maxLength: 12 });
    fc.assert(
      fc.property(
        name,
        fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/), labelValue, { maxKeys: 4 }),
        fc.double({ noNaN: true }),
        (n, labels, value) => {
          const escaped = Object.entries(labels).map(
            ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
          );
          const text = `# TYPE ${n} gauge\n${n}${escaped.length === 0 ? '' : `{${escaped.join(',')}}`} ${String(value).replace('Infinity', 'Inf')}\n`;
          const sample = parsePrometheus(text).get(n)?.samples[0];
          expect(sample?.labels).toEqual(labels);
          // `String(-0)` is "0": compare numerically.
          expect(sample?.value === value).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects malformed lines instead of inventing numbers', () => {
    for (const bad of ['metric{a="x} 1', 'metric{a=x} 1', 'metric abc', '9metric 1', 'metric{="x"} 1']) {
      expect(() => parsePrometheus(bad), bad).toThrow(SyntaxError);
    }
  });
});

describe('cacheStats', () => {
  it('groups registry cache lookups by registry and kind', () => {
    const text = [
      '# TYPE gatehouse_registry_cache_total counter',
      'gatehouse_registry_cache_total{registry="npm",kind="metadata",result="hit"} 8',
      'gatehouse_registry_cache_total{registry="npm",kind="metadata",result="not_modified"} 1',
      'gatehouse_registry_cache_total{registry="npm",kind="metadata",result="miss"} 3',
      'gatehouse_registry_cache_total{registry="npm",kind="metadata",result="stale"} 2',
      'gatehouse_registry_cache_total{registry="pypi",kind="file",result="miss"} 1',
    ].join('\n');
    expect(cacheStats(text)).toEqual([
      { key: 'npm · metadata', hit: 9, miss: 3, other: 2 },
      { key: 'pypi · file', hit: 0, miss: 1, other: 0 },
    ]);
  });
});
