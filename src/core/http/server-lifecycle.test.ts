import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MainHttpServer } from './server.ts';
import { startTestServer } from './test-fixtures.ts';

/** A route that waits until the test releases it, and tells the test when it has started. */
function slowRoute(server: MainHttpServer) {
  const started: (() => void)[] = [];
  const release: (() => void)[] = [];
  server.app.get('/slow', { preHandler: server.authenticate }, async () => {
    await new Promise<void>((resolve) => {
      release.push(resolve);
      started.shift()?.();
    });
    return { done: true };
  });
  return {
    nextStart: () => new Promise<void>((resolve) => started.push(resolve)),
    releaseAll: () => {
      for (const r of release.splice(0)) r();
    },
  };
}

const auth = { authorization: 'Bearer admin-token' };

/** A server with the slow route and one request to it already being processed. */
async function startWithSlowRequest() {
  let slow!: ReturnType<typeof slowRoute>;
  const t = await startTestServer({}, (server) => {
    slow = slowRoute(server);
  });
  const started = slow.nextStart();
  const pending = fetch(`${t.url}/slow`, { headers: auth });
  await started;
  return { t, slow, pending };
}

void describe('readiness and health', () => {
  void it('flips /readyz to 503 naming the failing check, and back when it recovers', async () => {
    await using t = await startTestServer();
    let databaseUp = true;
    t.health.register('database', () =>
      Promise.resolve({
        ok: databaseUp,
        ...(databaseUp ? {} : { detail: 'connect ECONNREFUSED 10.0.0.5:5432' }),
      }),
    );
    t.health.register('door:edge', () => Promise.resolve({ ok: true }));
    const ready = await fetch(`${t.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready' });
    databaseUp = false;
    const down = await fetch(`${t.url}/readyz`);
    assert.equal(down.status, 503);
    const body = await down.text();
    assert.deepEqual(JSON.parse(body), { status: 'not ready', failing: ['database'] });
    assert.doesNotMatch(body, /10\.0\.0\.5/);
    assert.equal((await fetch(`${t.url}/healthz`)).status, 200, 'liveness does not follow dependencies');
    databaseUp = true;
    assert.equal((await fetch(`${t.url}/readyz`)).status, 200);
  });

  void it('shows per-check detail on /api/health only to health:read, and refuses bad credentials', async () => {
    await using t = await startTestServer();
    t.health.register('cache', () => Promise.resolve({ ok: false, detail: 'redis 10.0.0.6 down' }));
    const anonymous = await fetch(`${t.url}/api/health`);
    assert.equal(anonymous.status, 503);
    assert.deepEqual(await anonymous.json(), { status: 'unavailable' });
    const consumer = await fetch(`${t.url}/api/health`, {
      headers: { authorization: 'Bearer consumer-token' },
    });
    assert.deepEqual(await consumer.json(), { status: 'unavailable' });
    const admin = await fetch(`${t.url}/api/health`, { headers: auth });
    assert.deepEqual(await admin.json(), {
      status: 'unavailable',
      checks: { cache: { ok: false, detail: 'redis 10.0.0.6 down' } },
    });
    const forged = await fetch(`${t.url}/api/health`, { headers: { authorization: 'Bearer forged' } });
    assert.equal(forged.status, 401);
    await forged.arrayBuffer();
  });
});

void describe('listen', () => {
  void it('binds an IPv6 listener given as [::1]:0 and reports its URL', async () => {
    await using t = await startTestServer({ listen: '[::1]:0' });
    assert.match(t.url, /^http:\/\/\[::1\]:\d+$/);
    const response = await fetch(`${t.url}/healthz`);
    assert.deepEqual(await response.json(), { status: 'ok' });
  });

  void it('names the address and the reason when the port is taken', async () => {
    await using first = await startTestServer();
    const taken = new URL(first.url).host;
    await assert.rejects(startTestServer({ listen: taken }), {
      message: `Cannot listen on "${taken}" (server.listen): EADDRINUSE`,
    });
  });
});

void describe('load shedding and graceful close', () => {
  void it('sheds requests over maxInFlight with GW_ERR_OVERLOADED but still answers probes', async () => {
    let slow!: ReturnType<typeof slowRoute>;
    await using t = await startTestServer({ maxInFlight: 2 }, (server) => {
      slow = slowRoute(server);
    });
    const first = slow.nextStart();
    const a = fetch(`${t.url}/slow`, { headers: auth });
    await first;
    const second = slow.nextStart();
    const b = fetch(`${t.url}/slow`, { headers: auth });
    await second;
    assert.equal(t.server.inFlight, 2);
    const shed = await fetch(`${t.url}/slow`, { headers: auth });
    assert.equal(shed.status, 503);
    assert.equal(((await shed.json()) as { code: string }).code, 'GW_ERR_OVERLOADED');
    assert.equal(shed.headers.get('retry-after'), '1');
    assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
    slow.releaseAll();
    assert.equal((await a).status, 200);
    assert.equal((await b).status, 200);
  });

  void it('lets an in-flight request finish during close while new connections are refused', async () => {
    const { t, slow, pending } = await startWithSlowRequest();
    const closing = t.server.close(AbortSignal.timeout(10_000));
    for (let i = 0; i < 1000 && t.server.app.server.listening; i++)
      await new Promise((resolve) => setImmediate(resolve));
    assert.equal(t.server.app.server.listening, false);
    await assert.rejects(fetch(`${t.url}/healthz`), /fetch failed/);
    assert.equal(t.server.inFlight, 1);
    slow.releaseAll();
    const response = await pending;
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { done: true });
    // The keep-alive connection closes after its last response instead of holding the drain.
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      closing.then(() => 'closed'),
      new Promise<string>((resolve) => {
        timer = setTimeout(resolve, 5000, 'still open');
      }),
    ]);
    clearTimeout(timer);
    assert.equal(outcome, 'closed');
    assert.equal(t.server.inFlight, 0);
    await closing;
  });

  void it('destroys connections still busy when the deadline passes', async () => {
    const { t, slow, pending } = await startWithSlowRequest();
    const deadline = new AbortController();
    const closing = t.server.close(deadline.signal);
    deadline.abort();
    await assert.rejects(pending, /fetch failed/);
    await closing;
    slow.releaseAll();
  });
});
