/**
 * Where an OCI uplink's credentials go when its Bearer challenge names a token realm: a fake
 * https registry on 127.0.0.1 names, per repository, a plain http realm or an https one on
 * another port. Refused realms answer 502 naming the problem, are audited, and never see a
 * request; allowed ones issue the token the registry then accepts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { ensureDevelopmentCa, issueCertificate } from '#core/tls';
import { type Gateway, registryConfig, startGateway } from './harness.ts';

const USER = 'puller';
const PASSWORD = 'realm-secret';
const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
const TOKEN = 'token-from-realm';

/** A token realm that records every request and issues TOKEN for the right credentials. */
interface Realm {
  readonly server: Server;
  readonly url: string;
  readonly requests: { authorization: string | undefined; scope: string | null }[];
}

let work: string;
let gw: Gateway;
let registry: Server;
let registryUrl: string;
/** `<method> <path>` of every request the registry got. */
const registryRequests: string[] = [];
let plainRealm: Realm;
let tlsRealm: Realm;
const blobs = new Map<string, Buffer>();
let trustedBefore: string[];

const listen = async (server: Server): Promise<number> => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
};

function realmHandler(requests: Realm['requests']) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://realm');
    requests.push({ authorization: req.headers.authorization, scope: url.searchParams.get('scope') });
    if (req.headers.authorization !== BASIC) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: TOKEN }));
  };
}

/** Adds a blob to the fake registry; returns its digest. */
function blob(content: string): string {
  const bytes = Buffer.from(content);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  blobs.set(digest, bytes);
  return digest;
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'registry-oci-realm-'));
  const ca = await ensureDevelopmentCa(work);
  const leaf = await issueCertificate({ ca, ipAddresses: ['127.0.0.1'], usage: 'server', days: 1 });
  // The gateway runs in this process: its uplink connections trust the test CA from here on.
  trustedBefore = getCACertificates('default');
  setDefaultCACertificates([...trustedBefore, ca.certPem]);
  const tls = { cert: leaf.certPem, key: leaf.keyPem };

  const plainRequests: Realm['requests'] = [];
  const plain = createHttpServer(realmHandler(plainRequests));
  plainRealm = {
    server: plain,
    url: `http://127.0.0.1:${await listen(plain)}/token`,
    requests: plainRequests,
  };
  const tlsRequests: Realm['requests'] = [];
  const secure = createHttpsServer(tls, realmHandler(tlsRequests));
  tlsRealm = {
    server: secure,
    url: `https://127.0.0.1:${await listen(secure)}/token`,
    requests: tlsRequests,
  };

  // distribution-spec token flow: 401 with the realm until the request carries the realm's token.
  // Repositories under `plain/` name the http realm, the others the https one.
  registry = createHttpsServer(tls, (req, res) => {
    registryRequests.push(`${req.method} ${req.url}`);
    const m = /^\/v2\/([a-z]+)\/app\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '');
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      const realm = m?.[1] === 'plain' ? plainRealm.url : tlsRealm.url;
      const scope = `repository:${m?.[1] ?? 'x'}/app:pull`;
      res
        .writeHead(401, {
          'www-authenticate': `Bearer realm="${realm}",service="fake-registry",scope="${scope}"`,
          'content-type': 'application/json',
        })
        .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const bytes = m === null ? undefined : blobs.get(m[2] as string);
    if (bytes === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
      return;
    }
    res
      .writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length })
      .end(bytes);
  });
  registryUrl = `https://127.0.0.1:${await listen(registry)}`;

  const uplink = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    url: registryUrl,
    username: USER,
    password: PASSWORD,
    retries: 0,
    ...extra,
  });
  gw = await startGateway({
    config: {
      npm: { enabled: false },
      oci: {
        uplinks: [
          uplink('open'),
          // Pinned to another origin: the realm on the uplink's own host is no longer allowed.
          uplink('pinned', { tokenRealmOrigins: ['https://127.0.0.1:1'] }),
          uplink('trusted', { tokenRealmOrigins: [new URL(tlsRealm.url).origin] }),
        ],
      },
    },
  });
});

after(async () => {
  await gw?.[Symbol.asyncDispose]();
  for (const s of [registry, plainRealm?.server, tlsRealm?.server]) {
    s?.closeAllConnections();
    s?.close();
  }
  if (trustedBefore !== undefined) setDefaultCACertificates(trustedBefore);
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

async function refused(path: string, why: RegExp): Promise<void> {
  const res = await fetch(`${gw.url}${path}`);
  assert.equal(res.status, 502, path);
  const doc = (await res.json()) as { errors: { code: string; message: string }[] };
  assert.equal(doc.errors[0]?.code, 'UNAUTHORIZED', path);
  assert.match(doc.errors[0]?.message ?? '', /token realm ".*" .*refused/, path);
  assert.match(doc.errors[0]?.message ?? '', why, path);
  await gw.core.audit.verify();
  const events = await gw.core.audit.query({ action: 'registry.upstream.error' });
  const event = events.events.find((e) => e.resource === `path:${path}`);
  assert.ok(event, `no registry.upstream.error event for ${path}`);
  assert.match(event.reason ?? '', why);
}

void describe('OCI token realms', () => {
  void it('refuses a plain http realm for an https uplink, and the realm never sees the credentials', async () => {
    const digest = blob('layer behind a plain http realm\n');
    await refused(`/v2/open/plain/app/blobs/${digest}`, /plain http while the uplink is https/);
    assert.deepEqual(plainRealm.requests, []);
  });

  void it('refuses a realm whose origin is not in the pinned tokenRealmOrigins', async () => {
    const digest = blob('layer behind a realm the operator did not pin\n');
    const seen = tlsRealm.requests.length;
    await refused(`/v2/pinned/tls/app/blobs/${digest}`, /is not in the uplink's tokenRealmOrigins/);
    assert.equal(tlsRealm.requests.length, seen);
  });

  void it('fetches a token from an allowed realm: on the uplink host by default, or pinned', async () => {
    for (const name of ['open', 'trusted']) {
      const content = `layer through ${name}\n`;
      const digest = blob(content);
      const seen = tlsRealm.requests.length;
      const res = await fetch(`${gw.url}/v2/${name}/tls/app/blobs/${digest}`);
      assert.equal(res.status, 200, name);
      assert.equal(await res.text(), content, name);
      assert.deepEqual(tlsRealm.requests.slice(seen), [
        { authorization: BASIC, scope: 'repository:tls/app:pull' },
      ]);
    }
  });

  void it('answers HEAD of a blob not in the cache from the registry HEAD, through the token flow', async () => {
    const content = 'layer only looked at\n';
    const digest = blob(content);
    const path = `/v2/tls/app/blobs/${digest}`;
    const res = await fetch(`${gw.url}/v2/open/tls/app/blobs/${digest}`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(content.length));
    assert.equal(res.headers.get('docker-content-digest'), digest);
    const seen = registryRequests.filter((r) => r.endsWith(` ${path}`));
    assert.ok(seen.length > 0 && seen.every((r) => r.startsWith('HEAD ')), seen.join(', '));
  });

  void it('refuses a plain http origin in tokenRealmOrigins of an https uplink when the config is read', () => {
    assert.throws(
      () =>
        registryConfig({
          oci: {
            uplinks: [{ name: 'hub', url: registryUrl, tokenRealmOrigins: ['http://auth.example.test'] }],
          },
        }),
      /oci\.uplinks\[0\]\.tokenRealmOrigins.*https origins only/s,
    );
  });
});
