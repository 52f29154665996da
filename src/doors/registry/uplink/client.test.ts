import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { validateRaw } from '#core/config';
import { uplinkSchema } from '../config.ts';
import { CircuitBreaker } from './breaker.ts';
import { UplinkClient } from './client.ts';

let now = 0;
const clock = { now: () => now };
const seen: { url: string; auth: string | undefined }[] = [];
let failures = 0;
const server = createServer((req, res) => {
  seen.push({ url: req.url ?? '', auth: req.headers.authorization });
  if (req.url === '/flaky' && failures > 0) {
    failures -= 1;
    res.writeHead(503).end();
    return;
  }
  res.writeHead(200).end('ok');
});
let base: string;
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

const client = (raw: Record<string, unknown>, sleeps: number[] = []) =>
  new UplinkClient({
    config: validateRaw(uplinkSchema, { name: 'u', url: `${base}/`, ...raw }, 'test'),
    clock,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  });

void describe('circuit breaker', () => {
  void it('opens after N failures, probes once after the cool-down, closes on success', () => {
    const states: string[] = [];
    const b = new CircuitBreaker({ clock, failures: 2, cooldownMs: 1000, onChange: (s) => states.push(s) });
    assert.ok(b.tryAcquire());
    b.failure();
    assert.ok(b.tryAcquire());
    b.failure();
    assert.equal(b.state, 'open');
    assert.equal(b.tryAcquire(), false);
    now += 1000;
    assert.ok(b.tryAcquire(), 'one probe');
    assert.equal(b.tryAcquire(), false, 'only one probe at a time');
    b.failure();
    assert.equal(b.state, 'open', 'a failed probe re-opens');
    now += 1000;
    assert.ok(b.tryAcquire());
    b.success();
    assert.equal(b.state, 'closed');
    assert.deepEqual(states, ['open', 'half-open', 'open', 'half-open', 'closed']);
  });
});

void describe('uplink client', () => {
  void it('retries 5xx with exponential backoff and succeeds', async () => {
    const sleeps: number[] = [];
    failures = 2;
    const c = client({ retries: 3, retryBackoff: '100ms' }, sleeps);
    const res = await c.request({ url: `${base}/flaky`, what: 'flaky' });
    assert.equal(res.status, 200);
    await res.body.dump();
    assert.equal(sleeps.length, 2);
    assert.ok((sleeps[0] ?? 0) >= 50 && (sleeps[0] ?? 0) <= 150);
    assert.ok((sleeps[1] ?? 0) >= 100 && (sleeps[1] ?? 0) <= 300);
    await c.close();
  });

  void it('sends credentials only to its own origin', async () => {
    const c = client({ token: 's3cret' });
    seen.length = 0;
    await (await c.request({ url: `${base}/a`, what: 'a' })).body.dump();
    const other = base.replace('127.0.0.1', 'localhost');
    await (await c.request({ url: `${other}/b`, what: 'b' })).body.dump();
    assert.deepEqual(
      seen.map((s) => s.auth),
      ['Bearer s3cret', undefined],
    );
    await c.close();
  });

  void it('reports an unreachable uplink and opens its breaker', async () => {
    const c = new UplinkClient({
      config: validateRaw(
        uplinkSchema,
        { name: 'dead', url: 'http://127.0.0.1:1/', retries: 0, breakerFailures: 2 },
        'test',
      ),
      clock,
    });
    for (let i = 0; i < 2; i++)
      await assert.rejects(c.request({ url: 'http://127.0.0.1:1/x', what: 'x' }), {
        code: 'GW_ERR_REGISTRY_UPLINK_UNAVAILABLE',
      });
    await assert.rejects(c.request({ url: 'http://127.0.0.1:1/x', what: 'x' }), /circuit breaker open/);
    await c.close();
  });
});
