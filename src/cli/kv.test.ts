import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createH2cServer, type Http2Server } from 'node:http2';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ConnectRouter } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { type ListRequest, KvService, type SetRequest } from '#gen/gatehouse/kv/v1/kv_pb.ts';
import { runCliCaptured } from '#testing/cli-run';
import { closedPort } from '#testing/services';
import { kvCommands } from './kv.ts';

/** Runs `gatehouse kv …` in this process; stdout may claim to be a terminal. */
async function kv(args: readonly string[], options: { tty?: boolean } = {}) {
  const run = await runCliCaptured(['kv', ...args], kvCommands, { GATEHOUSE_HOME: '/nonexistent' }, options);
  return { code: run.code, bytes: run.bytes, stdout: run.out, stderr: run.err };
}

const KEYS = ['a', 'line1\nline2', 'red\u001b[31mX\u001b[0m', 'csi\u009bY', 'del\u007f'];
const VALUE = Buffer.from('v\u001b]0;owned\u0007\r\nz', 'utf8');

/**
 * A stand-in kv listener over plain-text HTTP/2 (an `http://` URL) that records what the CLI
 * sends and answers with keys and a value holding control characters.
 */
function fakeKvListener() {
  const sets: SetRequest[] = [];
  const lists: ListRequest[] = [];
  const routes = (router: ConnectRouter) =>
    router.service(KvService, {
      set(req) {
        sets.push(req);
        return { version: 1n };
      },
      get(req) {
        return { found: true, entry: { key: req.key, value: VALUE, version: 1n, metadata: '', ttlMs: 0n } };
      },
      list(req) {
        lists.push(req);
        return { keys: KEYS.slice(0, req.pageSize), nextPageToken: '' };
      },
    });
  return { server: createH2cServer(connectNodeAdapter({ routes })), sets, lists };
}

void describe('gatehouse kv flags', () => {
  const fake = fakeKvListener();
  let url: string;
  before(async () => {
    fake.server.listen(0, '127.0.0.1');
    await once(fake.server, 'listening');
    url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
  });
  after(() => closeH2(fake.server));

  void it('sends --if-version as the exact uint64, 0 included', async () => {
    for (const text of ['0', '7', '9007199254740993', '18446744073709551615']) {
      const res = await kv(['set', 'orders', 'k', 'v', '--if-version', text, '--kv-url', url]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(fake.sets.at(-1)?.expectedVersion, BigInt(text));
    }
    await kv(['set', 'orders', 'k', 'v', '--kv-url', url]);
    assert.equal(fake.sets.at(-1)?.expectedVersion, undefined);
  });

  void it('refuses an --if-version that is not a uint64 as a usage error naming the range', async () => {
    const sent = fake.sets.length;
    for (const text of [
      '1.5',
      '-1',
      '99999999999999999999',
      '18446744073709551616',
      'abc',
      '1e3',
      ' 7',
      '',
    ]) {
      const res = await kv(['set', 'orders', 'k', 'v', `--if-version=${text}`, '--kv-url', url, '--json']);
      assert.equal(res.code, 2, `${text}: ${res.stderr}`);
      const { error } = JSON.parse(res.stdout) as { error: { code: string; message: string } };
      assert.equal(error.code, 'GW_ERR_CLI_USAGE');
      assert.equal(
        error.message,
        `Invalid "--if-version" "${text}": expected a whole number from 0 (only if absent) to 18446744073709551615`,
      );
    }
    assert.equal(fake.sets.length, sent, 'no refused write reached the listener');
  });

  void it('lists at most --limit keys and refuses a limit below 1', async () => {
    const one = await kv(['ls', 'orders', '--limit', '1', '--kv-url', url, '--json']);
    assert.deepEqual(JSON.parse(one.stdout), [{ key: 'a' }]);
    assert.equal(fake.lists.at(-1)?.pageSize, 1);
    for (const text of ['-1', '0', '1.5', 'x', '99999999999999999999']) {
      const res = await kv(['ls', 'orders', '--limit', text, '--kv-url', url]);
      assert.equal(res.code, 2, `${text}: ${res.stdout}`);
      assert.match(res.stderr, /Invalid "--limit" ".*": expected a whole number from 1 to 9007199254740991/);
    }
  });

  void it('refuses a --ttl beyond the protocol range', async () => {
    const res = await kv(['set', 'orders', 'k', 'v', '--ttl', '10000w', '--kv-url', url]);
    assert.equal(res.code, 2, res.stderr);
    assert.match(
      res.stderr,
      /Invalid "--ttl" "10000w": expected whole seconds from 0 \(no expiry\) to 31536000/,
    );
    assert.equal((await kv(['set', 'orders', 'k', 'v', '--ttl', '365d', '--kv-url', url])).code, 0);
  });

  void it('takes --ttl as plain whole seconds or with units', async () => {
    for (const [text, seconds] of [
      ['0', 0],
      ['1', 1],
      ['60', 60],
      ['31536000', 31_536_000],
      ['60s', 60],
      ['1000ms', 1],
      ['2d', 172_800],
    ] as const) {
      const res = await kv(['set', 'orders', 'k', 'v', '--ttl', text, '--kv-url', url]);
      assert.equal(res.code, 0, `${text}: ${res.stderr}`);
      assert.equal(fake.sets.at(-1)?.ttlSeconds, seconds, text);
    }
    for (const text of ['31536001', '-1', '1.5', '1e3', ' 60', '', '99999999999999999999']) {
      const res = await kv(['set', 'orders', 'k', 'v', `--ttl=${text}`, '--kv-url', url]);
      assert.equal(res.code, 2, `${text}: ${res.stderr}`);
      assert.match(
        res.stderr,
        /Invalid "--ttl" ".*": expected whole seconds from 0 \(no expiry\) to 31536000/,
      );
    }
  });

  void it('shows keys of another tenant with their control characters escaped', async () => {
    const ls = await kv(['ls', 'orders', '--kv-url', url]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(ls.stdout, 'KEY\na\nline1\\nline2\nred\\x1b[31mX\\x1b[0m\ncsi\\u009bY\ndel\\x7f\n');
    const json = await kv(['ls', 'orders', '--kv-url', url, '--json']);
    assert.deepEqual(
      (JSON.parse(json.stdout) as { key: string }[]).map((r) => r.key),
      KEYS,
    );
  });

  void it('prints a value raw into a pipe and escaped at a terminal', async () => {
    const piped = await kv(['get', 'orders', 'k', '--kv-url', url]);
    assert.deepEqual(piped.bytes, VALUE);
    const tty = await kv(['get', 'orders', 'k', '--kv-url', url], { tty: true });
    assert.equal(tty.stdout, 'v\\x1b]0;owned\\x07\\r\nz\n');
  });
});

/** Asserts the one-line `GW_ERR_CLI_NO_SERVER` report of `kv ls` on `url`. */
async function unreachable(url: string, reason: RegExp) {
  const res = await kv(['ls', 'orders', '--kv-url', url, '--json']);
  assert.equal(res.code, 1, res.stderr);
  const { error } = JSON.parse(res.stdout) as { error: { code: string; message: string } };
  assert.equal(error.code, 'GW_ERR_CLI_NO_SERVER');
  assert.ok(error.message.startsWith(`Cannot reach the Gatehouse kv listener at "${url}": `), error.message);
  assert.match(error.message, reason);
  assert.doesNotMatch(error.message, /\n|openssl|routines|\.c:\d/i);
  assert.equal(res.stderr, `error: ${error.message}\n`);
}

void describe('gatehouse kv without a listener', () => {
  let plainHttp: ReturnType<typeof createHttpServer>;
  let httpPort: number;
  before(async () => {
    plainHttp = createHttpServer((_req, res) => res.end('not grpc')).listen(0, '127.0.0.1');
    await once(plainHttp, 'listening');
    httpPort = (plainHttp.address() as AddressInfo).port;
  });
  after(() => {
    plainHttp.closeAllConnections();
    plainHttp.close();
  });

  void it('names the URL and the reason of a refused connection', async () => {
    await unreachable(`https://127.0.0.1:${await closedPort()}`, /connection refused \(ECONNREFUSED\)$/);
  });

  void it('says that an https URL met a port without TLS, without OpenSSL text', async () => {
    await unreachable(
      `https://127.0.0.1:${httpPort}`,
      /TLS handshake failed.*\(ERR_SSL_WRONG_VERSION_NUMBER\)$/,
    );
  });

  void it('refuses an http URL of another machine before sending the token in clear text', async () => {
    // Names that never resolve (RFC 6761) and a documentation address: refused before any lookup
    // or connection, so no HEADERS frame with the token leaves the machine.
    for (const url of ['http://kv.invalid:7443', 'http://192.0.2.1:7443', 'http://[2001:db8::1]:7443']) {
      const res = await kv(['ls', 'orders', '--kv-url', url, '--token', 'secret-token']);
      assert.deepEqual(
        [res.code, res.stderr],
        [
          2,
          `error: Invalid kv URL "${url}": credentials would travel in clear text; a kv listener speaks TLS: use an https:// URL\n`,
        ],
      );
    }
  });

  void it('refuses a malformed URL, an unreadable file and unusable PEM before calling', async () => {
    const url = await kv(['ls', 'orders', '--kv-url', 'not-a-url']);
    assert.deepEqual(
      [url.code, url.stderr],
      [2, 'error: Invalid kv URL "not-a-url": expected one such as "https://127.0.0.1:7443"\n'],
    );
    const ca = await kv(['ls', 'orders', '--kv-url', 'https://127.0.0.1:1', '--ca', '/nonexistent/ca.pem']);
    assert.deepEqual(
      [ca.code, ca.stderr],
      [2, 'error: Cannot read the "--ca" file "/nonexistent/ca.pem" (ENOENT)\n'],
    );
    const dir = await mkdtemp(join(tmpdir(), 'kv-cli-'));
    const junk = join(dir, 'junk.pem');
    await writeFile(junk, 'not a pem\n');
    try {
      const pem = await kv([
        'ls',
        'orders',
        '--kv-url',
        'https://127.0.0.1:1',
        '--cert',
        junk,
        '--key',
        junk,
        '--json',
      ]);
      assert.equal(pem.code, 1, pem.stderr);
      assert.deepEqual(JSON.parse(pem.stdout), {
        error: {
          message:
            'Cannot connect to "https://127.0.0.1:1": the --ca, --cert or --key file is not a usable PEM certificate or key (ERR_OSSL_PEM_NO_START_LINE)',
          code: 'GW_ERR_TLS_INVALID',
        },
      });
      // TLS ignores a CA file without certificates: without this check every server would look
      // untrusted (GW_ERR_CLI_NO_SERVER) instead of the file being named.
      const random = join(dir, 'random.bin');
      await writeFile(random, Buffer.from([0x8f, 0x00, 0xff, 0x2d, 0x2d, 0x0a, 0x13, 0x37]));
      const broken = join(dir, 'broken.pem');
      await writeFile(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
      for (const [file, reason] of [
        [junk, 'no "BEGIN CERTIFICATE" block'],
        [random, 'no "BEGIN CERTIFICATE" block'],
        [broken, 'ERR_OSSL_ASN1_WRONG_TAG'],
      ] as const) {
        const res = await kv(['ls', 'orders', '--kv-url', 'https://127.0.0.1:1', '--ca', file, '--json']);
        assert.equal(res.code, 1, res.stderr);
        assert.deepEqual(JSON.parse(res.stdout), {
          error: {
            message: `Cannot connect to "https://127.0.0.1:1": the CA file "${file}" is not a usable PEM certificate (${reason})`,
            code: 'GW_ERR_TLS_INVALID',
          },
        });
      }
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  void it('says that an http URL met a server without HTTP/2', async () => {
    await unreachable(`http://127.0.0.1:${httpPort}`, /does not speak HTTP\/2.*\(ERR_HTTP2_ERROR\)$/);
  });

  void it('gives an http URL whose connection is reset the same TLS hint as one that is closed', async () => {
    // A TLS listener drops plain-text HTTP/2 with a close or, depending on timing, a reset.
    const resetting = createNetServer((socket) => socket.resetAndDestroy()).listen(0, '127.0.0.1');
    await once(resetting, 'listening');
    try {
      await unreachable(
        `http://127.0.0.1:${(resetting.address() as AddressInfo).port}`,
        /closed without an answer; a kv listener speaks TLS: use an https:\/\/ URL$/,
      );
    } finally {
      resetting.close();
    }
  });
});

async function closeH2(server: Http2Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
