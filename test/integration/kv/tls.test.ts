import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ensureDevelopmentCa, issueCertificate } from '#core/tls';
import { expectStatus, grpcClient } from './grpc-client.ts';
import { type KvGateway, startKvGateway } from './harness.ts';

const run = promisify(execFile);
const AEAD_SUITES = ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256'];

/** Resolves when the socket closes, or rejects after `ms` (the bound of the test, not a sleep). */
function closedWithin(socket: Socket, ms: number, what = 'socket'): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} still open after ${ms} ms`)), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A client certificate for "payments" from `ca` is ignored: the call is unauthenticated. */
async function assertUntrusted(
  url: string,
  serverCa: string,
  ca: Parameters<typeof issueCertificate>[0]['ca'],
) {
  const issued = await issueCertificate({
    ca,
    uris: ['spiffe://gatehouse.test/ns/payments'],
    usage: 'client',
    days: 1,
  });
  const untrusted = grpcClient(url, serverCa, { cert: issued.certPem, key: issued.keyPem });
  try {
    await expectStatus(untrusted.call('Get', { namespace: 'payments', key: 'k' }), 16);
  } finally {
    untrusted.close();
  }
}

void describe('kv transport security', () => {
  let gw: KvGateway;
  let port: number;
  before(async () => {
    gw = await startKvGateway({ kv: { tls: { handshakeTimeout: '300ms', idleTimeout: '500ms' } } });
    port = Number(new URL(gw.url).port);
  });
  after(async () => gw?.close());

  /** A TLS 1.2 handshake attempt, asserted to be refused for its version. */
  const assertTls12Refused = async () => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: gw.ca,
      maxVersion: 'TLSv1.2',
      ALPNProtocols: ['h2'],
    });
    const [error] = (await once(socket, 'error').catch((e: unknown) => [e])) as [Error];
    assert.match(
      String((error as NodeJS.ErrnoException).code ?? error.message),
      /PROTOCOL_VERSION|VERSION|ALERT/i,
    );
    socket.destroy();
  };

  void it('refuses a TLS 1.2 client (node tls.connect)', assertTls12Refused);

  void it('refuses a TLS 1.2 client (openssl s_client -tls1_2)', async () => {
    const result = await run('openssl', ['s_client', '-tls1_2', '-connect', `127.0.0.1:${port}`], {
      timeout: 10_000,
    }).catch((e: { stdout: string; stderr: string; code: number }) => e);
    const text = `${result.stdout}${result.stderr}`;
    assert.ok(!/Protocol\s*:\s*TLSv1\.2/.test(text) || /Cipher is \(NONE\)/.test(text), text);
    assert.match(text, /alert protocol version|no protocols available|wrong version|Cipher is \(NONE\)/i);
  });

  void it('issues the development certificate for kv.tls.hosts too, so clients can dial a Service name', async () => {
    const named = await startKvGateway({
      kv: { tls: { hosts: ['kv.gatehouse.svc', 'KV.Example.test', '10.1.2.3', 'fd00::7'] } },
    });
    try {
      const { port: namedPort } = new URL(named.url);
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: Number(namedPort),
        ca: named.ca,
        ALPNProtocols: ['h2'],
        servername: 'kv.gatehouse.svc',
      });
      // Verified against the development CA, for the name the client dialled.
      await once(socket, 'secureConnect');
      const sans = String(socket.getPeerCertificate().subjectaltname).split(', ');
      socket.destroy();
      for (const san of [
        'DNS:localhost',
        'DNS:kv.gatehouse.svc',
        'DNS:kv.example.test',
        'IP Address:10.1.2.3',
        'IP Address:127.0.0.1',
        'IP Address:FD00:0:0:0:0:0:0:7',
      ]) {
        assert.ok(sans.includes(san), `${san} in ${sans.join(', ')}`);
      }
    } finally {
      await named.close();
    }
    // A name that is neither, and hosts beside an own certificate, are configuration mistakes.
    await assert.rejects(
      startKvGateway({ kv: { tls: { hosts: ['bad_name'] } } }),
      /tls\.hosts\[0\]: "bad_name" is not valid/,
    );
    await assert.rejects(
      startKvGateway({ kv: { tls: { hosts: ['999.1.1.1'] } } }),
      /neither an IP address nor a DNS name/,
    );
    await assert.rejects(
      startKvGateway({
        kv: { tls: { certFile: join(gw.home, 'x.crt'), keyFile: join(gw.home, 'x.key'), hosts: ['a.test'] } },
      }),
      /with kv\.tls\.certFile the certificate is your own/,
    );
  });

  void it('negotiates TLS 1.3 with an AEAD suite and ALPN h2 only', async () => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: gw.ca,
      ALPNProtocols: ['h2'],
      servername: 'localhost',
    });
    await once(socket, 'secureConnect');
    assert.equal(socket.getProtocol(), 'TLSv1.3');
    assert.equal(socket.alpnProtocol, 'h2');
    assert.ok(AEAD_SUITES.includes(socket.getCipher().standardName), socket.getCipher().standardName);
    socket.destroy();
    const http1 = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: gw.ca,
      ALPNProtocols: ['http/1.1'],
      servername: 'localhost',
    });
    http1.on('error', () => undefined);
    http1.once('secureConnect', () => http1.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    let answer = '';
    http1.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    await closedWithin(http1, 5000);
    assert.doesNotMatch(answer, /^HTTP\/1\.1/, 'no HTTP/1.1 fallback');
  });

  void it('closes connections that never finish the handshake (slowloris)', async () => {
    const silent = netConnect(port, '127.0.0.1');
    silent.on('error', () => undefined);
    await once(silent, 'connect');
    await closedWithin(silent, 5000, 'silent TCP');
    // A client that completes TLS but never speaks HTTP/2 is closed by the idle timeout.
    const mute = tlsConnect({
      host: '127.0.0.1',
      port,
      ca: gw.ca,
      ALPNProtocols: ['h2'],
      servername: 'localhost',
    });
    mute.on('error', () => undefined);
    // Read (and drop) the server's SETTINGS so that its close is seen.
    mute.resume();
    await once(mute, 'secureConnect');
    await closedWithin(mute, 5000, 'mute TLS');
  });

  void it('maps a verified client certificate to a principal and ignores untrusted ones', async () => {
    const identity = await gw.clientCertificate('payments');
    const mtls = grpcClient(gw.url, gw.ca, identity);
    try {
      await mtls.call('Set', { namespace: 'payments', key: 'k', value: Buffer.from('v') });
      await expectStatus(mtls.call('Get', { namespace: 'orders', key: 'k' }), 7);
    } finally {
      mtls.close();
    }
    await assertUntrusted(gw.url, gw.ca, await ensureDevelopmentCa(join(gw.home, 'foreign')));
  });

  void it('verifies client certificates against the development CA when the server certificate is its own', async () => {
    // A server certificate from another CA, with no kv.tls.clientCaFile: client certificates
    // must still be checked against the data folder's CA, not against any root Node knows.
    const dir = join(gw.home, 'own');
    const ownCa = await ensureDevelopmentCa(dir);
    const server = await issueCertificate({
      ca: ownCa,
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
      days: 1,
    });
    writeFileSync(join(dir, 'server.crt'), server.certPem);
    writeFileSync(join(dir, 'server.key'), server.keyPem);
    const own = await startKvGateway({
      kv: { tls: { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key') } },
    });
    try {
      const trusted = grpcClient(own.url, ownCa.certPem, await own.clientCertificate('payments'));
      try {
        await trusted.call('Set', { namespace: 'payments', key: 'k', value: Buffer.from('v') });
      } finally {
        trusted.close();
      }
      // Issued by the server's own CA, which is not a client CA here.
      await assertUntrusted(own.url, ownCa.certPem, ownCa);
    } finally {
      await own.close();
    }
    // A certificate without its key (or the reverse) is a configuration mistake, not a fallback.
    await assert.rejects(
      startKvGateway({ kv: { tls: { certFile: join(dir, 'server.crt') } } }),
      /kv\.tls\.keyFile is missing/,
    );
  });

  void it('hot-reloads the server certificate without dropping open connections', async () => {
    const token = await gw.token(['operator:orders']);
    const auth = { authorization: `Bearer ${token}` };
    const client = grpcClient(gw.url, gw.ca);
    const fingerprint = async () => {
      const s = tlsConnect({
        host: '127.0.0.1',
        port,
        ca: gw.ca,
        ALPNProtocols: ['h2'],
        servername: 'localhost',
      });
      await once(s, 'secureConnect');
      const fp = (s as TLSSocket).getPeerCertificate().fingerprint256;
      s.destroy();
      return fp;
    };
    try {
      await client.call('Set', { namespace: 'orders', key: 'before', value: Buffer.from('1') }, auth);
      const old = await fingerprint();
      const tls = join(gw.home, 'tls');
      const issued = await issueCertificate({
        ca: { certPem: gw.ca, keyPem: readFileSync(join(tls, 'ca.key'), 'utf8') },
        dnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1'],
        usage: 'server',
        days: 2,
      });
      // Replace by rename, as deployment tools do.
      writeFileSync(join(tls, 'server.key.new'), issued.keyPem);
      writeFileSync(join(tls, 'server.crt.new'), issued.certPem);
      renameSync(join(tls, 'server.key.new'), join(tls, 'server.key'));
      renameSync(join(tls, 'server.crt.new'), join(tls, 'server.crt'));
      let current = old;
      for (let i = 0; i < 100 && current === old; i += 1) {
        await new Promise((r) => setTimeout(r, 50));
        current = await fingerprint();
      }
      assert.notEqual(current, old, 'new handshakes use the new certificate');
      // The connection opened before the reload still serves calls.
      await client.call('Get', { namespace: 'orders', key: 'before' }, auth);
      // The reloaded context keeps TLS 1.3 only.
      await assertTls12Refused();
    } finally {
      client.close();
    }
  });

  void it('caps concurrent connections per client address', async () => {
    const capped = await startKvGateway({ kv: { limits: { connectionsPerIp: 3 } } });
    const cport = Number(new URL(capped.url).port);
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 3; i += 1) {
        const s = netConnect(cport, '127.0.0.1');
        s.on('error', () => undefined);
        await once(s, 'connect');
        held.push(s);
      }
      const extra = netConnect(cport, '127.0.0.1');
      extra.on('error', () => undefined);
      await closedWithin(extra, 5000);
      const auth = { authorization: `Bearer ${await capped.token(['operator:orders'])}` };
      const client = grpcClient(capped.url, capped.ca);
      await expectStatus(client.call('Get', { namespace: 'orders', key: 'k' }, auth), 14);
      client.close();
      for (const s of held) s.destroy();
      await Promise.all(held.filter((s) => !s.closed).map((s) => once(s, 'close')));
      const again = grpcClient(capped.url, capped.ca);
      let ok = false;
      for (let i = 0; i < 40 && !ok; i += 1) {
        ok = await again
          .call('Get', { namespace: 'orders', key: 'k' }, auth)
          .then(() => true)
          .catch(() => false);
        if (!ok) await new Promise((r) => setTimeout(r, 50));
      }
      again.close();
      assert.equal(ok, true, 'a freed slot is usable again');
    } finally {
      for (const s of held) s.destroy();
      await capped.close();
    }
  });
});
