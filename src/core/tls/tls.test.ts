import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ConnectionOptions, connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { isGatewayError } from '#core/errors';
import { createLogger } from '#core/log';
import {
  type CertificateAuthority,
  ensureDevelopmentCa,
  ensureServerCertificate,
  issueCertificate,
} from './ca.ts';
import { createTlsContextProvider, type TlsReloadOutcome } from './context-provider.ts';
import { peerCertificateInfo } from './peer.ts';

const log = createLogger({ level: 'silent' });

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function dial(port: number, options: ConnectionOptions): Promise<TLSSocket> {
  const socket = connect({ host: '127.0.0.1', port, ...options });
  await once(socket, 'secureConnect');
  return socket;
}

async function echo(socket: TLSSocket, text: string): Promise<string> {
  socket.write(text);
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  return chunk.toString();
}

/** Writes a freshly issued localhost server pair as `<name>.crt`/`<name>.key` in `dir`. */
async function writeServerPair(dir: string, name: string, ca: CertificateAuthority, days = 1) {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const issued = await issueCertificate({ ca, dnsNames: ['localhost'], usage: 'server', days });
  await writeFile(certFile, issued.certPem);
  await writeFile(keyFile, issued.keyPem);
  return { certFile, keyFile, issued };
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

function echoServer(options: Parameters<typeof createServer>[0] & object): Server {
  return createServer(options, (socket) => socket.pipe(socket));
}

void describe('core/tls', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gatehouse-tls-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  void it('creates the development CA once, with a private key file of mode 0600', async () => {
    const first = await ensureDevelopmentCa(dir);
    assert.equal((await stat(first.keyFile)).mode & 0o777, 0o600);
    const second = await ensureDevelopmentCa(dir);
    assert.equal(second.certPem, first.certPem);
    assert.equal(second.keyPem, first.keyPem);
    assert.match(first.certPem, /BEGIN CERTIFICATE/);
  });

  void it('refuses a data folder whose CA key does not match its certificate', async () => {
    const other = await mkdtemp(join(tmpdir(), 'gatehouse-tls-bad-'));
    try {
      const ca = await ensureDevelopmentCa(other);
      const foreign = await ensureDevelopmentCa(join(other, 'foreign'));
      await writeFile(ca.keyFile, foreign.keyPem);
      await assert.rejects(ensureDevelopmentCa(other), (error: unknown) => {
        assert.ok(isGatewayError(error));
        assert.equal(error.code, 'GW_ERR_TLS_INVALID');
        assert.match(error.message, /ca\.key" does not hold the private key/);
        return true;
      });
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  void it('serves an issued certificate that a real node:tls client verifies', async () => {
    const ca = await ensureDevelopmentCa(dir);
    const files = await ensureServerCertificate({
      dataDir: dir,
      ca,
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    assert.equal((await stat(files.keyFile)).mode & 0o777, 0o600);
    const again = await ensureServerCertificate({
      dataDir: dir,
      ca,
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    assert.deepEqual(again, files);
    const certBefore = await readFile(files.certFile, 'utf8');
    await ensureServerCertificate({ dataDir: dir, ca, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    assert.equal(await readFile(files.certFile, 'utf8'), certBefore, 'reused while it covers the names');
    // A name that is only a prefix of a covered one is not covered: a new certificate is issued.
    await ensureServerCertificate({ dataDir: dir, ca, dnsNames: ['localhos'], ipAddresses: [] });
    assert.notEqual(await readFile(files.certFile, 'utf8'), certBefore);
    // IPv6 names, however spelled, are covered by the certificate that has them (Node prints
    // them uncompressed): no new key at every start.
    await ensureServerCertificate({
      dataDir: dir,
      ca,
      dnsNames: ['localhost'],
      ipAddresses: ['::1', 'FD00::7'],
    });
    const withIpv6 = await readFile(files.certFile, 'utf8');
    await ensureServerCertificate({
      dataDir: dir,
      ca,
      dnsNames: ['localhost'],
      ipAddresses: ['::1', 'fd00:0::7'],
    });
    assert.equal(await readFile(files.certFile, 'utf8'), withIpv6, 'reused for the same IPv6 addresses');
    await ensureServerCertificate({ dataDir: dir, ca, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    await using provider = await createTlsContextProvider({
      ...files,
      minVersion: 'TLSv1.3',
      log,
      watch: false,
    });
    const server = echoServer(provider.serverOptions());
    const port = await listen(server);
    try {
      const byName = await dial(port, { ca: ca.certPem, servername: 'localhost' });
      assert.equal(byName.getProtocol(), 'TLSv1.3');
      assert.equal(await echo(byName, 'ping'), 'ping');
      byName.end();
      const byIp = await dial(port, { ca: ca.certPem });
      assert.equal(byIp.authorized, true);
      byIp.end();
      // A client that trusts another CA must fail verification.
      const foreign = await ensureDevelopmentCa(join(dir, 'foreign-ca'));
      const refused = connect({ host: '127.0.0.1', port, ca: foreign.certPem, servername: 'localhost' });
      const [error] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
      assert.match(String(error.code), /UNABLE_TO_VERIFY|SELF_SIGNED|UNABLE_TO_GET_ISSUER/);
      // TLS 1.3 is the default floor: a TLS 1.2-only client is refused.
      const old = connect({
        host: '127.0.0.1',
        port,
        ca: ca.certPem,
        servername: 'localhost',
        maxVersion: 'TLSv1.2',
      });
      const [versionError] = (await once(old, 'error')) as [NodeJS.ErrnoException];
      assert.match(String(versionError.code), /ERR_SSL/);
    } finally {
      server.close();
    }
  });

  void it('is seen as TLS 1.3 by openssl s_client', async () => {
    const ca = await ensureDevelopmentCa(dir);
    const files = await ensureServerCertificate({
      dataDir: dir,
      ca,
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    await using provider = await createTlsContextProvider({
      ...files,
      minVersion: 'TLSv1.2',
      log,
      watch: false,
    });
    const server = echoServer(provider.serverOptions());
    const port = await listen(server);
    try {
      const child = spawn(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${port}`,
          '-servername',
          'localhost',
          '-CAfile',
          files.caFile,
          '-brief',
        ],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.stdin.end();
      const [code] = (await once(child, 'exit')) as [number];
      assert.match(output, /Protocol version: TLSv1\.3/, output);
      // With a TLS 1.2 floor, a TLS 1.2-only client is still served.
      const old = await dial(port, { ca: ca.certPem, servername: 'localhost', maxVersion: 'TLSv1.2' });
      assert.equal(old.getProtocol(), 'TLSv1.2');
      old.end();
      assert.match(output, /Verification: OK/, output);
      assert.equal(code, 0, output);
    } finally {
      server.close();
    }
  });

  void it('swaps the served certificate on file change without dropping an open connection', async () => {
    const ca = await ensureDevelopmentCa(dir);
    const { certFile, keyFile } = await writeServerPair(dir, 'live', ca);
    await using provider = await createTlsContextProvider({
      certFile,
      keyFile,
      minVersion: 'TLSv1.3',
      log,
      debounceMs: 20,
    });
    const server = echoServer(provider.serverOptions());
    provider.attach(server);
    const port = await listen(server);
    try {
      const open = await dial(port, { ca: ca.certPem, servername: 'localhost' });
      const firstFingerprint = open.getPeerCertificate().fingerprint256;
      const second = await issueCertificate({ ca, dnsNames: ['localhost'], usage: 'server', days: 2 });
      const reloaded = new Promise<TlsReloadOutcome>((resolve) => {
        const off = provider.onReload((outcome) => {
          if (outcome.ok && outcome.fingerprint256 !== firstFingerprint) {
            off();
            resolve(outcome);
          }
        });
      });
      await writeFile(keyFile, second.keyPem);
      await writeFile(certFile, second.certPem);
      const outcome = await reloaded;
      assert.equal(outcome.ok, true);
      const bySni = await dial(port, { ca: ca.certPem, servername: 'localhost' });
      assert.notEqual(bySni.getPeerCertificate().fingerprint256, firstFingerprint);
      bySni.end();
      const withoutSni = await dial(port, { ca: ca.certPem, checkServerIdentity: () => undefined });
      assert.notEqual(withoutSni.getPeerCertificate().fingerprint256, firstFingerprint);
      withoutSni.end();
      // The connection opened before the swap still carries data.
      assert.equal(await echo(open, 'still here'), 'still here');
      open.end();
    } finally {
      server.close();
    }
  });

  void it('reloads a Kubernetes Secret mount updated by its ..data link swap', async () => {
    const ca = await ensureDevelopmentCa(dir);
    const mount = await mkdtemp(join(dir, 'secret-'));
    const version = async (name: string) => {
      await mkdir(join(mount, name));
      return writeServerPair(join(mount, name), 'tls', ca);
    };
    const first = await version('..v1');
    await symlink('..v1', join(mount, '..data'));
    await symlink('..data/tls.crt', join(mount, 'tls.crt'));
    await symlink('..data/tls.key', join(mount, 'tls.key'));
    await using provider = await createTlsContextProvider({
      certFile: join(mount, 'tls.crt'),
      keyFile: join(mount, 'tls.key'),
      minVersion: 'TLSv1.3',
      log,
      debounceMs: 20,
    });
    const reloaded = new Promise<TlsReloadOutcome>((resolve) => {
      provider.onReload((outcome) => {
        if (outcome.ok && outcome.fingerprint256 !== fingerprint(first.issued.certPem)) resolve(outcome);
      });
    });
    // What the kubelet does: a new timestamped folder, a new link, renamed over ..data.
    const second = await version('..v2');
    await symlink('..v2', join(mount, '..data_tmp'));
    await rename(join(mount, '..data_tmp'), join(mount, '..data'));
    await rm(join(mount, '..v1'), { recursive: true });
    const outcome = await Promise.race([
      reloaded,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('no reload within 5 s')), 5000).unref(),
      ),
    ]);
    assert.ok(outcome.ok && outcome.fingerprint256 === fingerprint(second.issued.certPem));
  });

  void it('keeps the last good certificate when new files are invalid', async () => {
    const ca = await ensureDevelopmentCa(dir);
    const { certFile, keyFile } = await writeServerPair(dir, 'keep', ca);
    const other = await issueCertificate({ ca, dnsNames: ['localhost'], usage: 'server', days: 1 });
    await using provider = await createTlsContextProvider({
      certFile,
      keyFile,
      minVersion: 'TLSv1.3',
      log,
      watch: false,
    });
    const previous = provider.current();
    await writeFile(keyFile, other.keyPem);
    const mismatch = await provider.reload();
    assert.equal(mismatch.ok, false);
    assert.ok(!mismatch.ok && isGatewayError(mismatch.error) && mismatch.error.code === 'GW_ERR_TLS_INVALID');
    assert.match(mismatch.ok ? '' : mismatch.error.message, /keep\.key" does not hold the private key/);
    await writeFile(certFile, 'not a certificate');
    const garbage = await provider.reload();
    assert.ok(!garbage.ok && /keep\.crt" holds no PEM certificate/.test(garbage.error.message));
    assert.equal(provider.current(), previous);
    await assert.rejects(
      createTlsContextProvider({ certFile, keyFile: join(dir, 'missing.key'), minVersion: 'TLSv1.3', log }),
      /missing\.key" cannot be read \(ENOENT\)/,
    );
  });

  void it('requires and reports a client certificate for mTLS', async () => {
    const ca = await ensureDevelopmentCa(dir);
    const pair = await writeServerPair(dir, 'm', ca);
    const client = await issueCertificate({
      ca,
      commonName: 'billing, eu',
      uris: ['spiffe://example.test/ns/orders/sa/api', 'urn:example:odd, "quoted"'],
      dnsNames: ['billing.internal'],
      usage: 'client',
      days: 1,
    });
    await using provider = await createTlsContextProvider({
      certFile: pair.certFile,
      keyFile: pair.keyFile,
      caFile: ca.certFile,
      minVersion: 'TLSv1.3',
      log,
      watch: false,
    });
    const seen: unknown[] = [];
    const server = createServer(
      { ...provider.serverOptions(), requestCert: true, rejectUnauthorized: true },
      (s) => {
        seen.push(peerCertificateInfo(s.getPeerCertificate()));
        s.end('ok');
      },
    );
    const port = await listen(server);
    try {
      const socket = await dial(port, {
        ca: ca.certPem,
        servername: 'localhost',
        cert: client.certPem,
        key: client.keyPem,
      });
      socket.resume();
      await once(socket, 'end');
      const info = seen[0] as ReturnType<typeof peerCertificateInfo>;
      assert.equal(info?.subject, 'CN=billing\\, eu');
      assert.deepEqual(info?.subjectAltNames, [
        'DNS:billing.internal',
        'URI:spiffe://example.test/ns/orders/sa/api',
        'URI:urn:example:odd, "quoted"',
      ]);
      assert.match(info?.fingerprint256 ?? '', /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      // Without a client certificate the handshake fails.
      // In TLS 1.3 the server's refusal arrives after the client finished its side of the handshake.
      const bare = connect({ host: '127.0.0.1', port, ca: ca.certPem, servername: 'localhost' });
      bare.resume();
      const [error] = (await once(bare, 'error')) as [NodeJS.ErrnoException];
      assert.match(String(error.code), /CERTIFICATE_REQUIRED|ECONNRESET/);
      assert.equal(seen.length, 1);
      // Certificates and keys written to disk are PEM text a later run can read back.
      assert.match(await readFile(ca.certFile, 'utf8'), /BEGIN CERTIFICATE/);
    } finally {
      server.close();
    }
  });
});
