import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Agent, fetch as undiciFetch } from 'undici';
import { validateRaw } from '#core/config';
import { httpConfigSchema } from './config.ts';
import { startTestServer, type TestServer } from './test-fixtures.ts';

const run = promisify(execFile);

/** `openssl req` arguments for a new P-256 key without a passphrase. */
const NEW_EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** Issues certificates with the openssl CLI, as an operator would. */
async function issue(dir: string, name: string, subject: string, ext: string, ca = 'ca'): Promise<void> {
  const file = (suffix: string) => join(dir, `${name}.${suffix}`);
  await run('openssl', ['req', ...NEW_EC_KEY, '-keyout', file('key'), '-out', file('csr'), '-subj', subject]);
  await writeFile(file('ext'), `${ext}\n`);
  const signer = ['-CA', join(dir, `${ca}.crt`), '-CAkey', join(dir, `${ca}.key`), '-CAcreateserial'];
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    file('csr'),
    ...signer,
    '-days',
    '2',
    '-out',
    file('crt'),
    '-extfile',
    file('ext'),
  ]);
}

async function makeCa(dir: string, name: string): Promise<void> {
  const out = ['-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`), '-subj', `/CN=${name}`];
  const ext = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'];
  await run('openssl', ['req', '-x509', ...NEW_EC_KEY, ...out, '-days', '2', ...ext]);
}

async function curl(args: readonly string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run('curl', ['-sS', '--max-time', '10', ...args]);
    return { code: 0, stdout };
  } catch (error) {
    return {
      code: Number((error as { code?: number }).code ?? -1),
      stdout: String((error as { stdout?: string }).stdout ?? ''),
    };
  }
}

function fingerprint(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.once('error', reject);
  });
}

let dir: string;
let t: TestServer;
let ca: string;
let port: number;
const SERVER_EXT = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-http-tls-'));
  await makeCa(dir, 'ca');
  await makeCa(dir, 'rogue');
  await issue(dir, 'server', '/CN=localhost', SERVER_EXT);
  await issue(dir, 'client', '/O=Example/CN=billing', 'extendedKeyUsage=clientAuth');
  await issue(dir, 'rogue-client', '/CN=billing', 'extendedKeyUsage=clientAuth', 'rogue');
  ca = await readFile(join(dir, 'ca.crt'), 'utf8');
  const tls = {
    certFile: join(dir, 'server.crt'),
    keyFile: join(dir, 'server.key'),
    requireTls: true,
    clientCa: join(dir, 'ca.crt'),
    requestClientCert: true,
  };
  t = await startTestServer({ tls }, (server) => {
    server.app.get('/api/whoami', { preHandler: server.authenticate }, (request) => ({
      id: request.principal?.id,
    }));
  });
  port = Number(new URL(t.url).port);
});
after(async () => {
  await t[Symbol.asyncDispose]();
  await rm(dir, { recursive: true, force: true });
});

void describe('main server over TLS', () => {
  void it('speaks HTTP/2 through ALPN and falls back to HTTP/1.1, with HSTS', async () => {
    const base = ['--cacert', join(dir, 'ca.crt'), '-o', '/dev/null', '-w', '%{http_version} %{http_code}'];
    assert.equal((await curl(['--http2', ...base, `${t.url}/healthz`])).stdout, '2 200');
    assert.equal((await curl(['--http1.1', ...base, `${t.url}/healthz`])).stdout, '1.1 200');
    const headers = await curl([
      '--http2',
      '--cacert',
      join(dir, 'ca.crt'),
      '-D',
      '-',
      '-o',
      '/dev/null',
      `${t.url}/nothing`,
    ]);
    assert.match(headers.stdout, /^HTTP\/2 404/);
    assert.match(headers.stdout, /strict-transport-security: max-age=31536000/);
    assert.match(headers.stdout, /content-type: application\/problem\+json/);
    const dispatcher = new Agent({ allowH2: true, connect: { ca } });
    const response = await undiciFetch(`${t.url}/healthz`, { dispatcher });
    assert.deepEqual(await response.json(), { status: 'ok' });
    await dispatcher.close();
  });

  void it('refuses plain HTTP and TLS below 1.3 on the TLS port', async () => {
    const plain = await curl(['-o', '/dev/null', `http://127.0.0.1:${port}/healthz`]);
    assert.notEqual(plain.code, 0);
    const old = await curl([
      '--cacert',
      join(dir, 'ca.crt'),
      '--tls-max',
      '1.2',
      '-o',
      '/dev/null',
      `${t.url}/healthz`,
    ]);
    assert.equal(old.code, 35, 'handshake failure');
  });

  void it('authenticates a client certificate from the trusted CA only', async () => {
    const common = ['--cacert', join(dir, 'ca.crt')];
    const good = await curl([
      ...common,
      '--cert',
      join(dir, 'client.crt'),
      '--key',
      join(dir, 'client.key'),
      `${t.url}/api/whoami`,
    ]);
    assert.deepEqual(JSON.parse(good.stdout), { id: 'cert:billing' });
    const rogue = await curl([
      ...common,
      '--cert',
      join(dir, 'rogue-client.crt'),
      '--key',
      join(dir, 'rogue-client.key'),
      `${t.url}/api/whoami`,
    ]);
    assert.equal((JSON.parse(rogue.stdout) as { code: string }).code, 'GW_ERR_AUTH_REQUIRED');
    const none = await curl([...common, `${t.url}/api/whoami`]);
    assert.equal((JSON.parse(none.stdout) as { code: string }).code, 'GW_ERR_AUTH_REQUIRED');
  });

  void it('reloads a replaced certificate without a restart and keeps the old one on a bad file', async () => {
    const before = await fingerprint(port, ca);
    await issue(dir, 'next', '/CN=localhost', SERVER_EXT);
    await rename(join(dir, 'next.key'), join(dir, 'server.key'));
    await rename(join(dir, 'next.crt'), join(dir, 'server.crt'));
    let now = before;
    for (let i = 0; i < 100 && now === before; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      now = await fingerprint(port, ca);
    }
    assert.notEqual(now, before, 'the new certificate is served');
    await writeFile(join(dir, 'server.crt'), 'not a certificate');
    for (
      let i = 0;
      i < 100 && !t.logs.some((l) => l['msg'] === 'TLS reload failed; keeping the current certificate');
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(await fingerprint(port, ca), now);
  });

  void it('drains an in-flight HTTP/2 stream on close with GOAWAY, then stops', async () => {
    let release!: () => void;
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => {
      entered = resolve;
    });
    // Its own pair: the reload test leaves server.crt unusable on purpose.
    await issue(dir, 'h2', '/CN=localhost', SERVER_EXT);
    const files = { certFile: join(dir, 'h2.crt'), keyFile: join(dir, 'h2.key') };
    const h2 = await startTestServer({ tls: files }, (server) => {
      server.app.get('/slow', async () => {
        await new Promise<void>((resolve) => {
          release = resolve;
          entered();
        });
        return { done: true };
      });
    });
    // curl, not undici: undici 7 fails in-flight streams on a graceful GOAWAY (nodejs/undici#5089).
    const pending = curl([
      '--http2',
      '--cacert',
      join(dir, 'ca.crt'),
      '-w',
      ' %{http_version} %{http_code}',
      `${h2.url}/slow`,
    ]);
    await inHandler;
    const closing = h2.server.close(AbortSignal.timeout(10_000));
    for (let i = 0; i < 1000 && h2.server.app.server.listening; i++)
      await new Promise((resolve) => setImmediate(resolve));
    assert.equal(h2.server.app.server.listening, false);
    assert.notEqual(
      (await curl(['--cacert', join(dir, 'ca.crt'), `${h2.url}/healthz`])).code,
      0,
      'new connections are refused',
    );
    release();
    assert.deepEqual(await pending, { code: 0, stdout: '{"done":true} 2 200' });
    await closing;
    assert.equal(h2.server.inFlight, 0);
  });

  void it('refuses configurations that would serve plain HTTP or half of a key pair', () => {
    const parse = (tls: Record<string, unknown>) => validateRaw(httpConfigSchema, { tls }, 'test');
    assert.throws(() => parse({ requireTls: 'maybe' }), /server|tls\.requireTls/);
    return Promise.all([
      assert.rejects(startTestServer({ tls: { requireTls: true } }), RangeError),
      assert.rejects(startTestServer({ tls: { certFile: join(dir, 'server.crt') } }), /certFile and keyFile/),
      assert.rejects(
        startTestServer({ tls: { certFile: join(dir, 'missing.crt'), keyFile: join(dir, 'server.key') } }),
        /missing\.crt" cannot be read/,
      ),
    ]).then(() => undefined);
  });
});
