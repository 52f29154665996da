import assert from 'node:assert/strict';
/**
 * Route swaps drain the backend connections no remaining route reaches: idle ones close at
 * once, busy ones once their requests end, and a backend a remaining route still names keeps
 * its connections (the same sockets serve on). Checked from the backend's side, by counting its
 * TCP connections, on the three pools: HTTP/1.1 keep-alive agents, node:http2 sessions and the
 * HTTP/2 frame relay's connections.
 */
import { connect as connectHttp2 } from 'node:http2';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { eventually } from '#testing/eventually';
import { type EdgeRoute, parseRoute } from '../../../src/doors/edge/model.ts';
import { type HoldingBackend, startHoldingBackend } from './backends.ts';
import { createTestPki, type Leaf, type TestPki } from './certs.ts';
import { type EdgeHarness, startEdge, testListener } from './harness.ts';
import { http1Get } from './peers.ts';

/** How the client reaches the route, and so which pool serves it. */
const PATHS = [
  { name: 'HTTP/1.1 backend (keep-alive agent)', backend: 'http1', client: 'http1' },
  { name: 'h2c backend from HTTP/1.1 clients (node:http2 session)', backend: 'h2c', client: 'http1' },
  { name: 'h2c backend from HTTP/2 clients (frame relay)', backend: 'h2c', client: 'h2' },
] as const;

/** Waits that a route swap's effect shows at the backend; far below any keep-alive timeout. */
const SETTLE = { timeoutMs: 2000, intervalMs: 20 };

void describe('edge route swaps drain the backend connections of removed backends', () => {
  let pki: TestPki;
  let leaf: Leaf;
  let edge: EdgeHarness;

  before(async () => {
    pki = await createTestPki();
    leaf = await pki.issue('pool', ['*.pool.test']);
    edge = await startEdge({ listeners: [testListener({ responseTimeout: '5s', idleTimeout: '10s' })] });
  });

  after(async () => {
    await edge[Symbol.asyncDispose]();
    await pki[Symbol.asyncDispose]();
  });

  /** An L7 route `<id>.pool.test`, through the validator the admin API uses. */
  const route = (id: string, backend: HoldingBackend, backendProtocol: 'h2c' | 'http1'): EdgeRoute => {
    const parsed = parseRoute({
      id,
      listener: 'main',
      host: `${id}.pool.test`,
      mode: 'l7',
      backend: backend.address,
      backendProtocol,
      certFile: leaf.certFile,
      keyFile: leaf.keyFile,
    });
    assert.ok(!Array.isArray(parsed), JSON.stringify(parsed));
    return parsed;
  };

  /** What the admin API does: change the store, then swap in the new table. */
  const addRoute = async (r: EdgeRoute) => {
    await edge.store.addRoute(r);
    await edge.service.refresh(true);
  };
  const removeRoute = async (id: string) => {
    assert.equal(await edge.store.removeRoute(id), true);
    await edge.service.refresh(true);
  };

  /** One GET on a client connection of its own (closed after), bounded by 2 s (HTTP/1.1) or 5 s. */
  const get = (client: 'http1' | 'h2', id: string, path = '/'): Promise<{ status: number; body: string }> => {
    const host = `${id}.pool.test`;
    const port = edge.port();
    // A client connection of its own each time (an agent without keep-alive).
    if (client === 'http1') return http1Get(new HttpsAgent({ ca: pki.ca }), port, host, path);
    return new Promise((resolve, reject) => {
      const session = connectHttp2(`https://127.0.0.1:${port}`, { servername: host, ca: pki.ca });
      session.on('error', reject);
      const timer = setTimeout(() => {
        session.destroy();
        reject(new Error(`${host}${path}: no answer in 5 s`));
      }, 5000);
      const stream = session.request({ ':path': path, ':authority': host });
      let status = 0;
      let body = '';
      stream.setEncoding('utf8');
      stream.on('response', (h) => {
        status = Number(h[':status']);
      });
      stream.on('data', (c: string) => {
        body += c;
      });
      stream.on('error', reject);
      stream.on('end', () => {
        clearTimeout(timer);
        session.close();
        resolve({ status, body });
      });
    });
  };

  for (const path of PATHS) {
    void describe(path.name, () => {
      void it('closes an idle connection to a removed backend promptly; new requests get no backend', async () => {
        await using backend = await startHoldingBackend(path.backend);
        await addRoute(route('idle', backend, path.backend));
        assert.deepEqual(await get(path.client, 'idle'), { status: 200, body: 'ok\n' });
        assert.ok(backend.open >= 1, 'the request left a pooled connection');

        await removeRoute('idle');
        await eventually(async () => backend.open, 0, {
          ...SETTLE,
          message: 'the idle connection to the removed backend closed',
        });
        // A request to the removed route reaches nothing: no new backend connection.
        const accepted = backend.accepted;
        await get(path.client, 'idle').catch(() => undefined);
        assert.equal(backend.accepted, accepted);
      });

      void it('lets a request in flight to a removed backend finish, then closes its connection', async () => {
        await using backend = await startHoldingBackend(path.backend);
        await addRoute(route('busy', backend, path.backend));
        const answer = get(path.client, 'busy', '/hold');
        assert.equal(await backend.heldSoon(1), 1, 'the request reached the backend');

        await removeRoute('busy');
        // A drain never cuts the request: its connection stays while it is in flight.
        assert.equal(backend.open, 1, 'the connection of the request in flight is open');
        backend.release();
        assert.deepEqual(await answer, { status: 200, body: 'held\n' });
        await eventually(async () => backend.open, 0, {
          ...SETTLE,
          message: 'the connection closed once its request was done',
        });
      });

      void it('keeps the connections of a backend a remaining route still names (same sockets)', async () => {
        await using shared = await startHoldingBackend(path.backend);
        await using other = await startHoldingBackend(path.backend);
        await addRoute(route('first', shared, path.backend));
        await addRoute(route('second', shared, path.backend));
        // Enough requests to fill every pool slot the backend gets (round-robin over four).
        for (let i = 0; i < 8; i++) assert.equal((await get(path.client, 'first')).body, 'ok\n');
        const open = shared.open;
        const accepted = shared.accepted;
        assert.ok(open >= 1);

        // One swap removes the route the connections were made for and adds an unrelated one.
        await removeRoute('first');
        await addRoute(route('unrelated', other, path.backend));
        for (let i = 0; i < 8; i++) assert.equal((await get(path.client, 'second')).body, 'ok\n');
        assert.equal((await get(path.client, 'unrelated')).body, 'ok\n');
        assert.equal(shared.accepted, accepted, 'no new connection to the backend still named');
        assert.equal(shared.open, open, 'its pooled connections stayed open');

        await removeRoute('second');
        await removeRoute('unrelated');
        await eventually(async () => shared.open + other.open, 0, { ...SETTLE, message: 'both drained' });
      });
    });
  }

  for (const relay of [true, false]) {
    void it(`answers 502 on a connection whose route was removed and tells the client to reconnect (http2Relay ${relay})`, async () => {
      await using other = relay
        ? undefined
        : await startEdge({ listeners: [testListener({ http2Relay: false, idleTimeout: '10s' })] });
      const target = other ?? edge;
      const change = async (action: () => Promise<unknown>) => {
        await action();
        await target.service.refresh(true);
      };
      await using backend = await startHoldingBackend('h2c');
      await change(() => target.store.addRoute(route('gone', backend, 'h2c')));
      const host = 'gone.pool.test';
      const port = target.port();
      // HTTP/1.1 keep-alive: the 502 closes the connection.
      const agent = new HttpsAgent({ ca: pki.ca, keepAlive: true, maxSockets: 1 });
      // HTTP/2: the 502 comes with a GOAWAY.
      const session = connectHttp2(`https://127.0.0.1:${port}`, { servername: host, ca: pki.ca });
      session.on('error', () => {});
      const h2 = (): Promise<number> =>
        new Promise((resolve, reject) => {
          const stream = session.request({ ':path': '/', ':authority': host });
          stream.on('response', (h) => resolve(Number(h[':status'])));
          stream.on('error', reject);
          stream.resume();
        });
      try {
        assert.equal((await http1Get(agent, port, host, '/')).status, 200);
        assert.equal(await h2(), 200);
        const goaway = new Promise<string>((resolve) => {
          session.once('goaway', () => resolve('goaway'));
          setTimeout(() => resolve('no GOAWAY within 5 s'), 5000).unref();
        });
        await change(() => target.store.removeRoute('gone'));
        const closed = new Promise<string | undefined>((resolve) => {
          const req = httpsRequest(
            { host: '127.0.0.1', port, servername: host, headers: { host }, path: '/', agent },
            (res) => {
              res.resume();
              resolve(`${res.statusCode} ${String(res.headers.connection)}`);
            },
          );
          req.on('error', () => resolve(undefined));
          req.end();
        });
        assert.equal(await closed, '502 close');
        assert.equal(await h2(), 502);
        assert.equal(await goaway, 'goaway');
      } finally {
        agent.destroy();
        session.destroy();
      }
    });
  }

  void it('answers 502 on a terminated connection whose route became passthrough (L4) under the same id', async () => {
    await using backend = await startHoldingBackend('http1');
    await addRoute(route('moved', backend, 'http1'));
    // One keep-alive client connection, terminated by the edge, across the swap.
    const agent = new HttpsAgent({ ca: pki.ca, keepAlive: true, maxSockets: 1 });
    try {
      assert.deepEqual(await http1Get(agent, edge.port(), 'moved.pool.test', '/'), {
        status: 200,
        body: 'ok\n',
      });
      await removeRoute('moved');
      const l4 = parseRoute({
        id: 'moved',
        listener: 'main',
        host: 'moved.pool.test',
        mode: 'l4',
        backend: backend.address,
      });
      assert.ok(!Array.isArray(l4), JSON.stringify(l4));
      await addRoute(l4);
      const accepted = backend.accepted;
      const next = await http1Get(agent, edge.port(), 'moved.pool.test', '/').catch(() => undefined);
      // The old connection's request is refused (or the connection is gone), never proxied as L7.
      if (next !== undefined) assert.equal(next.status, 502);
      assert.equal(backend.accepted, accepted, 'no L7 request reached the backend of the L4 route');
    } finally {
      agent.destroy();
      await removeRoute('moved');
    }
  });
});
