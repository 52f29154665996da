import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { parseExposition, sampleValue } from './exposition.ts';
import { createMetrics } from './prometheus.ts';

void describe('createMetrics', () => {
  void it('renders counters, gauges and histograms that parse back', async () => {
    const metrics = createMetrics({ processMetrics: false });
    const counter = metrics.counter({ name: 'gatehouse_test_total', help: 'T', labelNames: ['door'] });
    counter.inc({ door: 'edge' });
    counter.inc({ door: 'edge' }, 2);
    const gauge = metrics.gauge({ name: 'gatehouse_test_inflight', help: 'G' });
    gauge.set({}, 7);
    gauge.dec();
    const histogram = metrics.histogram({ name: 'gatehouse_test_seconds', help: 'H', buckets: [0.1, 1] });
    histogram.observe({}, 0.5);
    histogram.observe({}, 5);
    const { contentType, body } = await metrics.render();
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    const samples = parseExposition(body);
    assert.equal(sampleValue(samples, 'gatehouse_test_total', { door: 'edge' }), 3);
    assert.equal(sampleValue(samples, 'gatehouse_test_inflight'), 6);
    assert.equal(sampleValue(samples, 'gatehouse_test_seconds_bucket', { le: '0.1' }), 0);
    assert.equal(sampleValue(samples, 'gatehouse_test_seconds_bucket', { le: '1' }), 1);
    assert.equal(sampleValue(samples, 'gatehouse_test_seconds_bucket', { le: '+Inf' }), 2);
    assert.equal(sampleValue(samples, 'gatehouse_test_seconds_sum'), 5.5);
  });

  void it('includes process metrics with the gatehouse_ prefix', async () => {
    const samples = parseExposition((await createMetrics().render()).body);
    assert.ok(sampleValue(samples, 'gatehouse_process_cpu_user_seconds_total') !== undefined);
    assert.ok(samples.every((s) => s.name.startsWith('gatehouse_')));
  });

  void it('keeps registries private to each instance', async () => {
    const a = createMetrics({ processMetrics: false });
    const b = createMetrics({ processMetrics: false });
    a.counter({ name: 'gatehouse_private_total', help: 'P' }).inc();
    assert.doesNotMatch((await b.render()).body, /gatehouse_private_total/);
  });

  void it('returns the existing metric when a name is registered again, and refuses a different kind', async () => {
    const metrics = createMetrics({ processMetrics: false });
    const first = metrics.counter({ name: 'gatehouse_again_total', help: 'A', labelNames: ['x'] });
    const second = metrics.counter({ name: 'gatehouse_again_total', help: 'A', labelNames: ['x'] });
    first.inc({ x: '1' });
    second.inc({ x: '1' });
    const samples = parseExposition((await metrics.render()).body);
    assert.equal(sampleValue(samples, 'gatehouse_again_total', { x: '1' }), 2);
    assert.throws(() => metrics.gauge({ name: 'gatehouse_again_total', help: 'A' }), TypeError);
    assert.throws(() => metrics.counter({ name: 'gatehouse_again_total', help: 'A' }), TypeError);
    assert.throws(() => metrics.counter({ name: 'bad name', help: 'A' }), TypeError);
    assert.throws(
      () => metrics.counter({ name: 'gatehouse_x_total', help: 'A', labelNames: ['__x'] }),
      TypeError,
    );
  });

  void it('times with startTimer and extra labels', async () => {
    const metrics = createMetrics({ processMetrics: false });
    const h = metrics.histogram({
      name: 'gatehouse_timer_seconds',
      help: 'T',
      labelNames: ['route', 'status'],
    });
    const end = h.startTimer({ route: '/x' });
    const seconds = end({ status: '200' });
    assert.ok(seconds >= 0);
    const samples = parseExposition((await metrics.render()).body);
    assert.equal(sampleValue(samples, 'gatehouse_timer_seconds_count', { route: '/x', status: '200' }), 1);
  });

  void it('escapes any label value so that the exposition parses back to it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 40 }), fc.nat({ max: 1000 }), async (value, n) => {
        const metrics = createMetrics({ processMetrics: false });
        metrics.counter({ name: 'gatehouse_prop_total', help: 'P', labelNames: ['v'] }).inc({ v: value }, n);
        const samples = parseExposition((await metrics.render()).body);
        assert.equal(sampleValue(samples, 'gatehouse_prop_total', { v: value }), n);
      }),
      { numRuns: 200 },
    );
  });
});

void describe('parseExposition', () => {
  void it('rejects malformed lines', () => {
    assert.throws(() => parseExposition('metric{a="1" 2\n'), SyntaxError);
    assert.throws(() => parseExposition('metric{a=1} 2\n'), SyntaxError);
    assert.throws(() => parseExposition('metric abc\n'), SyntaxError);
    assert.throws(() => parseExposition('9metric 1\n'), SyntaxError);
  });
});
