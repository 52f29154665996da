/**
 * The HTTP/1.1 L7 path against request smuggling and slow clients: an Upgrade is tunnelled only
 * after the backend's 101 (what the client sends after its request head never reaches a backend
 * that answered otherwise), h2c upgrades are refused, a request head has a total deadline
 * (`requestHeaderTimeout`, 408), and absolute-form targets and authorities with userinfo or a bad
 * port get the same checks as on the HTTP/2 paths (400, or 421 for another route).
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startEchoBackend } from './backends.ts';
import { createTestPki, type Leaf, type TestPki } from './certs.ts';
import { type EdgeHarness, startEdge, testListener } from './harness.ts';
import { type Backend, rawExchange, startRawBackend } from './peers.ts';

interface TlsOutcome {
  /** Everything the edge sent, as latin1 text. */
  readonly text: string;
  /** When the edge closed the connection, or Infinity when the client gave up first. */
  readonly closedAfterMs: number;
}

/**
 * Opens an HTTP/1.1 TLS connection to the edge with `servername`, writes each chunk `gapMs`
 * apart, and resolves when the edge closes the connection or after `giveUpMs`.
 */
async function tlsExchange(
  port: number,
  servername: string,
  chunks: readonly string[],
  options: {
    readonly gapMs?: number;
    readonly giveUpMs?: number;
    readonly onData?: (s: Socket, text: string) => void;
  } = {},
): Promise<TlsOutcome> {
  const { onData, ...timing } = options;
  const r = await rawExchange(
    port,
    chunks.map((c) => Buffer.from(c, 'latin1')),
    {
      ...timing,
      servername,
      ...(onData === undefined ? {} : { onData: (s, received) => onData(s, received.toString('latin1')) }),
    },
  );
  return { text: r.received.toString('latin1'), closedAfterMs: r.closedAfterMs };
}

const head = (lines: readonly string[]) => `${lines.join('\r\n')}\r\n\r\n`;

/** A raw HTTP/1.1 backend answering `200 ok` (keep-alive) to every request head it reads. */
function okBackend() {
  return startRawBackend((socket, received) => {
    let answered = 0;
    socket.on('data', () => {
      const heads = received().toString('latin1').split('\r\n\r\n').length - 1;
      for (; answered < heads; answered++) {
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: keep-alive\r\n\r\nok\n');
      }
    });
  });
}

/**
 * A raw backend that switches protocols 100 ms after a request head (so bytes the edge sent on
 * early would arrive first), then echoes what it reads as `echo:<bytes>`; `beforeSwitch` holds
 * what it had read when it sent the 101.
 */
async function switchingBackend() {
  const beforeSwitch: string[] = [];
  const backend = await startRawBackend((socket, received) => {
    let switched = false;
    socket.on('data', (chunk: Buffer) => {
      if (switched) {
        socket.write(`echo:${chunk.toString('latin1')}`);
        return;
      }
      if (!received().includes('\r\n\r\n')) return;
      setTimeout(() => {
        switched = true;
        beforeSwitch.push(received().toString('latin1'));
        socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: echo\r\n\r\n');
      }, 100);
    });
  });
  return Object.assign(backend, { beforeSwitch });
}

void describe('edge HTTP/1.1 hardening', () => {
  let pki: TestPki;
  let leaf: Leaf;
  let edge: EdgeHarness;
  let ok: Awaited<ReturnType<typeof okBackend>>;
  let switching: Awaited<ReturnType<typeof switchingBackend>>;
  const backends: Backend[] = [];

  before(async () => {
    pki = await createTestPki();
    leaf = await pki.issue('l7', ['*.l7.test']);
    ok = await okBackend();
    switching = await switchingBackend();
    const echo = await startEchoBackend('http1');
    const h2c = await startEchoBackend('h2c');
    backends.push(ok, switching, echo, h2c);
    const l7 = (id: string, backend: string, backendProtocol: string) => ({
      id,
      listener: 'main',
      host: `${id}.l7.test`,
      mode: 'l7',
      backend,
      backendProtocol,
      certFile: leaf.certFile,
      keyFile: leaf.keyFile,
    });
    edge = await startEdge({
      listeners: [testListener({ idleTimeout: '5s', responseTimeout: '2s', requestHeaderTimeout: '400ms' })],
      routes: [
        l7('raw', ok.address, 'http1'),
        l7('switch', switching.address, 'http1'),
        l7('h1', echo.address, 'http1'),
        l7('b', echo.address, 'http1'),
        l7('h2', h2c.address, 'h2c'),
      ],
      policies: [{ id: 'need-team', route: 'b', kind: 'require-header', header: 'x-team', value: 'edge' }],
    });
  });

  after(async () => {
    await edge[Symbol.asyncDispose]();
    for (const b of backends) await b[Symbol.asyncDispose]();
    await pki[Symbol.asyncDispose]();
  });

  void it('passes a non-101 answer to an Upgrade on and closes: the bytes after the request head never reach the backend', async () => {
    const opened = ok.connections.length;
    const r = await tlsExchange(edge.port(), 'raw.l7.test', [
      head(['GET /ws HTTP/1.1', 'Host: raw.l7.test', 'Connection: Upgrade', 'Upgrade: websocket']) +
        head(['GET /admin HTTP/1.1', 'Host: internal.example', 'X-Forwarded-For: 6.6.6.6']),
    ]);
    assert.ok(Number.isFinite(r.closedAfterMs), 'the edge closed the connection');
    assert.match(r.text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(r.text, /\r\nconnection: close\r\n/i);
    assert.match(r.text, /\r\n\r\nok\n$/);
    assert.equal((r.text.match(/HTTP\/1\.1 /g) ?? []).length, 1, r.text);
    const seen = ok.connections.slice(opened).map((c) => Buffer.concat(c).toString('latin1'));
    assert.equal(seen.length, 1);
    assert.match(seen[0] ?? '', /^GET \/ws HTTP\/1\.1\r\n/);
    assert.doesNotMatch(seen[0] ?? '', /admin|internal\.example|6\.6\.6\.6/);
    assert.equal((seen[0] ?? '').split('\r\n\r\n').length, 2, 'one request head, nothing after it');
  });

  void it('tunnels after a real 101, and bytes sent with the request head reach the backend only after it', async () => {
    const r = await tlsExchange(
      edge.port(),
      'switch.l7.test',
      [
        `${head(['GET /chat HTTP/1.1', 'Host: switch.l7.test', 'Connection: Upgrade', 'Upgrade: echo'])}early`,
      ],
      {
        onData: (socket, text) => {
          if (text.includes('echo:early') && !text.includes('late')) socket.write('late');
          if (text.includes('echo:late')) socket.end();
        },
      },
    );
    assert.match(r.text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(r.text, /\r\n\r\necho:earlyecho:late$/);
    const seen = switching.beforeSwitch.at(-1) ?? '';
    assert.match(seen, /^GET \/chat HTTP\/1\.1\r\n/);
    assert.match(seen, /\r\nx-forwarded-for: 127\.0\.0\.1\r\n/i);
    assert.ok(seen.endsWith('\r\n\r\n'), `nothing after the head before the 101: ${JSON.stringify(seen)}`);
  });

  void it('closes a tunnel that stays silent for idleTimeout, as any other connection', async () => {
    // After the 101 the HTTP server no longer watches the socket: without a timeout of its own a
    // silent tunnel would hold its connection slot and the backend connection for ever.
    const r = await tlsExchange(
      edge.port(),
      'switch.l7.test',
      [`${head(['GET /chat HTTP/1.1', 'Host: switch.l7.test', 'Connection: Upgrade', 'Upgrade: echo'])}hi`],
      { giveUpMs: 12_000 },
    );
    assert.match(r.text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.ok(
      r.closedAfterMs >= 4_500 && r.closedAfterMs < 9_000,
      `closed after ${Math.round(r.closedAfterMs)} ms`,
    );
  });

  void it('refuses an h2c upgrade with 400 without reaching the backend', async () => {
    const opened = ok.connections.length;
    for (const upgrade of ['h2c', 'websocket, H2C']) {
      const r = await tlsExchange(edge.port(), 'raw.l7.test', [
        head([
          'GET / HTTP/1.1',
          'Host: raw.l7.test',
          'Connection: Upgrade, HTTP2-Settings',
          `Upgrade: ${upgrade}`,
          'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA',
        ]),
      ]);
      assert.match(r.text, /^HTTP\/1\.1 400 Bad Request\r\n/, upgrade);
      assert.ok(Number.isFinite(r.closedAfterMs));
    }
    assert.equal(ok.connections.length, opened);
  });

  void it('answers 408 and closes a request head still unfinished after requestHeaderTimeout, however it trickles', async () => {
    const trickle = Array.from({ length: 40 }, () => 'a');
    const r = await tlsExchange(
      edge.port(),
      'h1.l7.test',
      ['GET / HTTP/1.1\r\nHost: h1.l7.test\r\nX-A: ', ...trickle],
      {
        gapMs: 50,
        giveUpMs: 3000,
      },
    );
    assert.match(r.text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    // 400 ms, checked every 100 ms, after a TLS handshake.
    assert.ok(r.closedAfterMs >= 400 && r.closedAfterMs < 1500, `closed after ${r.closedAfterMs} ms`);
  });

  void it('gives each keep-alive request its own head deadline, counted from its first byte', async () => {
    const r = await tlsExchange(
      edge.port(),
      'h1.l7.test',
      [head(['GET /first HTTP/1.1', 'Host: h1.l7.test']), 'GET /second HTTP/1.1\r\n', 'Host: h1.l7.test\r\n'],
      { gapMs: 300, giveUpMs: 3000 },
    );
    // The first request is answered; the second starts 300 ms later and its head never ends.
    assert.match(r.text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(r.text, /"path":"\/first"/);
    assert.match(r.text, /HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.ok(r.closedAfterMs >= 700 && r.closedAfterMs < 2000, `closed after ${r.closedAfterMs} ms`);
  });

  /** One request; the edge closes after answering (`Connection: close`, or an answer of its own). */
  const request = (servername: string, target: string, host: string, extra: readonly string[] = []) =>
    tlsExchange(
      edge.port(),
      servername,
      [
        head([
          `GET ${target} HTTP/1.1`,
          `Host: ${host}`,
          ...(extra.length === 0 ? ['Connection: close'] : extra),
        ]),
      ],
      { giveUpMs: 3000 },
    );

  void it('reduces an absolute-form target to origin-form and checks its authority like Host', async () => {
    const own = await request('h1.l7.test', 'http://h1.l7.test/abs?q=1', 'h1.l7.test');
    assert.match(own.text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(own.text, /"path":"\/abs\?q=1"/);
    assert.match(own.text, /"host":"h1\.l7\.test"/);
    const h2 = await request('h2.l7.test', 'https://H2.l7.test:443', 'h2.l7.test');
    assert.match(h2.text, /^HTTP\/1\.1 200 OK\r\n/, 'an h2c backend gets an origin-form :path');
    assert.match(h2.text, /"path":"\/"/);
    // The target names another route (whose policy requires x-team): 421, as for Host.
    const other = await request('h1.l7.test', 'http://b.l7.test/abs', 'b.l7.test');
    assert.match(other.text, /^HTTP\/1\.1 421 /);
    // Host and target disagree (RFC 9112 would have the backend ignore Host): 400.
    const mixed = await request('h1.l7.test', 'http://b.l7.test/abs', 'h1.l7.test');
    assert.match(mixed.text, /^HTTP\/1\.1 400 /);
    for (const target of [
      'ftp://h1.l7.test/x',
      'http:///x',
      'http://h1.l7.test/x#frag',
      'h1.l7.test:443',
      'x',
    ]) {
      const bad = await request('h1.l7.test', target, 'h1.l7.test');
      assert.match(bad.text, /^HTTP\/1\.1 400 /, target);
    }
    // The last two are refused by Node's parser before any route code runs (not counted).
    await edge.expectMetric('gatehouse_edge_http_responses_total', { route: 'h1', status: '400' }, 4);
  });

  void it('refuses an authority with userinfo or a port that is not digits, in Host, the target and upgrades', async () => {
    const cases: [string, string][] = [
      ['/', 'h1.l7.test:1@b.l7.test'],
      ['/', 'h1.l7.test@b.l7.test'],
      ['/', 'h1.l7.test:x'],
      ['http://h1.l7.test:1@b.l7.test/', 'h1.l7.test'],
      ['http://user@h1.l7.test/', 'h1.l7.test'],
    ];
    for (const [target, host] of cases) {
      const r = await request('h1.l7.test', target, host);
      assert.match(r.text, /^HTTP\/1\.1 400 /, `${target} ${host}`);
      assert.ok(Number.isFinite(r.closedAfterMs));
    }
    const twoHosts = await request('h1.l7.test', '/', 'h1.l7.test', ['Host: b.l7.test']);
    assert.match(twoHosts.text, /^HTTP\/1\.1 400 /);
    const opened = ok.connections.length;
    const upgrade = await request('raw.l7.test', 'http://raw.l7.test:1@b.l7.test/ws', 'raw.l7.test', [
      'Connection: Upgrade',
      'Upgrade: websocket',
    ]);
    assert.match(upgrade.text, /^HTTP\/1\.1 400 /);
    const misdirectedUpgrade = await request('raw.l7.test', '/ws', 'b.l7.test', [
      'Connection: Upgrade',
      'Upgrade: websocket',
    ]);
    assert.match(misdirectedUpgrade.text, /^HTTP\/1\.1 421 /);
    assert.equal(ok.connections.length, opened);
  });
});
