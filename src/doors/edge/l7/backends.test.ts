import assert from 'node:assert/strict';
/**
 * BackendPool after a route swap: a request routed before the swap that asks for its removed
 * backend's agent or session gets one outside the pool, whose connection closes once the request
 * is done; a backend the routes still name is pooled as before. Checked from the backend's side.
 */
import { once } from 'node:events';
import {
  type Agent,
  createServer as createHttp1Server,
  type IncomingMessage,
  request as httpRequest,
} from 'node:http';
import { type ClientHttp2Session, createServer as createHttp2Server } from 'node:http2';
import type { AddressInfo, Server, Socket } from 'node:net';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { eventually } from '#testing/eventually';
import type { EdgeRoute } from '../model.ts';
import type { ConnectionInfo } from '../runtime.ts';
import { BackendPool, type BackendTarget } from './backends.ts';

/** A backend answering every request with `ok`, and its open TCP connections. */
interface CountingBackend {
  readonly address: string;
  readonly open: Set<Socket>;
  readonly server: Server;
}

async function listen(server: Server): Promise<CountingBackend> {
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, open, server };
}

function target(id: string, backend: CountingBackend, backendProtocol: 'h2c' | 'http1'): BackendTarget {
  const route = {
    id,
    listener: 'main',
    host: `${id}.test`,
    mode: 'l7',
    backend: backend.address,
    backendProtocol,
    backendProxyProtocol: false,
  } as unknown as EdgeRoute;
  return { route, info: { id: 1 } as ConnectionInfo, connectTimeoutMs: 1000 };
}

/** The body of one GET through an agent of the pool. */
async function getVia(agent: Agent, backend: CountingBackend): Promise<string> {
  const { port } = backend.server.address() as AddressInfo;
  const req = httpRequest({ host: '127.0.0.1', port, path: '/', agent });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  return text(res);
}

/** The body of one GET on a session of the pool. */
async function getOn(session: ClientHttp2Session): Promise<string> {
  const stream = session.request({ ':path': '/' });
  stream.end();
  return text(stream);
}

const answer = (_req: unknown, res: { end(body: string): void }) => res.end('ok');

const SETTLE = { timeoutMs: 2000, intervalMs: 20 };

/** A pool after a swap that kept route `a` (the first backend) and removed route `b` (the second). */
function afterSwap(backends: CountingBackend[], protocol: 'h2c' | 'http1') {
  const [liveBackend, goneBackend] = backends as [CountingBackend, CountingBackend];
  const pool = new BackendPool();
  const live = target('a', liveBackend, protocol);
  pool.retain([live.route]);
  return { pool, live, liveBackend, gone: target('b', goneBackend, protocol), goneBackend };
}

/** The live backend's one connection stays open after its request, until the pool closes. */
async function keptOpen(pool: BackendPool, backend: CountingBackend): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(backend.open.size, 1, 'its connection is kept alive');
  pool.close();
  await eventually(async () => backend.open.size, 0, SETTLE);
}

void describe('backend pool after a route swap', () => {
  let http1: CountingBackend[];
  let h2c: CountingBackend[];

  before(async () => {
    http1 = [await listen(createHttp1Server(answer)), await listen(createHttp1Server(answer))];
    h2c = [await listen(createHttp2Server(answer)), await listen(createHttp2Server(answer))];
  });

  after(() => {
    for (const b of [...http1, ...h2c]) {
      for (const socket of b.open) socket.destroy();
      b.server.close();
    }
  });

  void it('gives a removed HTTP/1.1 backend a one-off agent whose socket closes after its request', async () => {
    const { pool, live, liveBackend, gone, goneBackend } = afterSwap(http1, 'http1');

    const agent = pool.agent(gone);
    assert.notEqual(pool.agent(gone), agent, 'not kept in the pool');
    assert.equal(await getVia(agent, goneBackend), 'ok');
    await eventually(async () => goneBackend.open.size, 0, SETTLE);

    const pooled = pool.agent(live);
    assert.equal(pool.agent(live), pooled, 'a backend the routes name keeps its agent');
    assert.equal(await getVia(pooled, liveBackend), 'ok');
    await keptOpen(pool, liveBackend);
  });

  void it('gives a removed HTTP/2 backend a one-off session that closes after its request', async () => {
    const { pool, live, liveBackend, gone, goneBackend } = afterSwap(h2c, 'h2c');

    const session = pool.session(gone);
    const body = getOn(session);
    const other = pool.session(gone);
    assert.notEqual(other, session, 'not kept in the pool');
    assert.equal(await Promise.all([body, getOn(other)]).then((b) => b.join()), 'ok,ok');
    await eventually(async () => session.closed && other.closed, true, SETTLE);
    await eventually(async () => goneBackend.open.size, 0, SETTLE);

    const pooled = pool.session(live);
    assert.equal(await getOn(pooled), 'ok');
    assert.equal(pooled.closed, false, 'a backend the routes name keeps its session');
    await keptOpen(pool, liveBackend);
  });
});
