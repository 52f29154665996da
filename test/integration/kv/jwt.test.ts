import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { expectStatus, grpcClient, METHODS, sampleRequest } from './grpc-client.ts';
import { AUDIENCE, ISSUER, type KvGateway, startKvGateway } from './harness.ts';

const run = promisify(execFile);

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Builds a compact JWS by hand, for forgeries no honest library would produce. */
function forge(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  sign: (input: string) => string,
) {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sign(input)}`;
}

void describe('kv JWT authentication (JWKS issuer)', () => {
  let gw: KvGateway;
  let client: ReturnType<typeof grpcClient>;
  const now = () => Math.floor(Date.now() / 1000);
  const claims = () => ({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'svc-a',
    exp: now() + 300,
    iat: now(),
    roles: ['operator:orders'],
  });
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  before(async () => {
    // Hundreds of forged tokens from one address: lift the per-address verification budget.
    gw = await startKvGateway({ kv: { limits: { authenticationsPerIp: 100_000 } } });
    client = grpcClient(gw.url, gw.ca);
  });
  after(async () => {
    client?.close();
    await gw?.close();
  });

  void it('accepts a valid token', async () => {
    await client.call('Set', sampleRequest('Set', 'orders'), bearer(await gw.token(['operator:orders'])));
  });

  void it('refuses manipulated tokens on every method with UNAUTHENTICATED', async () => {
    const valid = await gw.token(['operator:orders']);
    const [h, p, s] = valid.split('.') as [string, string, string];
    const tampered = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    tampered['roles'] = ['admin:orders', 'operator:billing'];
    const forgeries: Record<string, string> = {
      'alg none': forge({ alg: 'none', kid: 'k1' }, claims(), () => ''),
      'alg none with a signature': forge({ alg: 'none', kid: 'k1' }, claims(), () => 'c2ln'),
      'HS256 signed with the RSA public key': forge(
        { alg: 'HS256', kid: 'k1', typ: 'JWT' },
        claims(),
        (input) => createHmac('sha256', gw.idp.publicKeyPem).update(input).digest('base64url'),
      ),
      'HS256 with the JWK as secret': forge({ alg: 'HS256', kid: 'k1' }, claims(), (input) =>
        createHmac('sha256', JSON.stringify(gw.idp.publicJwk)).update(input).digest('base64url'),
      ),
      expired: await gw.idp.sign({ roles: ['operator:orders'], exp: now() - 3600, iat: now() - 7200 }),
      'not yet valid': await gw.idp.sign({ roles: ['operator:orders'], nbf: now() + 3600 }),
      'wrong audience': await gw.idp.sign({ roles: ['operator:orders'], aud: 'another-service' }),
      'wrong issuer': await gw.idp.sign({ roles: ['operator:orders'], iss: 'https://evil.test' }),
      'no exp': await gw.idp.sign({ roles: ['operator:orders'], exp: undefined }),
      'tampered payload': `${h}.${b64(tampered)}.${s}`,
      'tampered signature': `${h}.${p}.${s.slice(0, -4)}AAAA`,
      'unknown kid': await gw.idp.sign({ roles: ['operator:orders'] }, { kid: 'k-unknown' }),
      'no kid': forge({ alg: 'RS256' }, claims(), () => s),
      garbage: 'a.b.c',
    };
    for (const [name, token] of Object.entries(forgeries)) {
      for (const method of METHODS) {
        try {
          await expectStatus(client.call(method, sampleRequest(method, 'orders'), bearer(token)), 16);
        } catch (error) {
          throw new Error(`${name} / ${method}`, { cause: error });
        }
      }
    }
  });

  void it('accepts a large token (an identity provider listing hundreds of groups), up to a 64 KiB header list', async () => {
    const groups = Array.from({ length: 600 }, (_, i) => `cn=group-${i},ou=teams,dc=example,dc=test`);
    const big = await gw.token(['operator:orders'], { groups });
    assert.ok(big.length > 30_000, `a ${big.length}-character token`);
    await client.call('Set', sampleRequest('Set', 'orders'), bearer(big));
    // Beyond the header list cap the stream is refused before anything reads it, and the
    // connection goes on serving.
    const padded = { ...bearer(big), 'x-padding': 'p'.repeat(40_000) };
    await expectStatus(client.call('Set', sampleRequest('Set', 'orders'), padded), 8);
    // One header field above 64 KiB is refused by the HPACK decoder itself (RST_STREAM
    // COMPRESSION_ERROR, which grpc-js reports as INTERNAL), again for that stream only.
    const huge = await gw.token(['operator:orders'], { groups: [...groups, ...groups, ...groups] });
    await expectStatus(client.call('Set', sampleRequest('Set', 'orders'), bearer(huge)), 13);
    await client.call('Set', sampleRequest('Set', 'orders'), bearer(big));
  });

  void it('refetches the key set at most once for a burst of unknown kids', async () => {
    const before = gw.idp.fetches();
    for (let i = 0; i < 5; i += 1) {
      const t = await gw.idp.sign({ roles: ['operator:orders'] }, { kid: `rotated-${i}` });
      await expectStatus(client.call('Get', sampleRequest('Get', 'orders'), bearer(t)), 16);
    }
    assert.ok(gw.idp.fetches() - before <= 1, `${gw.idp.fetches() - before} fetches`);
  });

  void it('refuses two Authorization headers on every protocol, whichever of them is valid', async () => {
    // Node's HTTP/2 parser keeps the first value of a singleton header and drops the others; a
    // proxy in front that checked the last one would then authorize another principal than the
    // door. grpc-js cannot send two (Node refuses to), curl can, as other gRPC stacks can.
    const dir = await mkdtemp(join(tmpdir(), 'kv-dup-auth-'));
    try {
      const ca = join(dir, 'ca.pem');
      await writeFile(ca, gw.ca);
      // GetRequest{namespace: "orders", key: "a"} in one gRPC frame.
      const message = Buffer.from([0x0a, 6, ...Buffer.from('orders'), 0x12, 1, 0x61]);
      const grpcFrame = join(dir, 'frame');
      await writeFile(grpcFrame, Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]));
      const json = join(dir, 'json');
      await writeFile(json, JSON.stringify({ namespace: 'orders', key: 'a' }));
      const url = `${gw.url}/gatehouse.kv.v1.KvService/Get`;
      const headersOf = async (body: string, contentType: string, tokens: readonly string[]) => {
        const args = [
          '-s',
          '--http2',
          '--cacert',
          ca,
          '-D',
          '-',
          '-o',
          '/dev/null',
          '--data-binary',
          `@${body}`,
        ];
        for (const h of [
          `content-type: ${contentType}`,
          'te: trailers',
          ...tokens.map((t) => `authorization: Bearer ${t}`),
        ])
          args.push('-H', h);
        const { stdout } = await run('curl', [...args, url], { encoding: 'utf8' });
        return stdout.toLowerCase();
      };
      const mine = await gw.token(['operator:orders']);
      const other = await gw.token(['operator:billing']);
      for (const tokens of [[mine], [mine, other], [other, mine], [mine, mine]]) {
        const grpc = await headersOf(grpcFrame, 'application/grpc', tokens);
        const connect = await headersOf(json, 'application/json', tokens);
        if (tokens.length === 1) {
          assert.match(grpc, /grpc-status: 0/);
          assert.match(connect, /^http\/2 200/);
          continue;
        }
        assert.match(grpc, /grpc-status: 16\r\n/, `gRPC, ${tokens.length} headers`);
        assert.match(grpc, /gatehouse-error-code: gw_err_auth_token_invalid/);
        assert.match(connect, /^http\/2 401/, 'Connect');
        assert.match(connect, /gatehouse-error-code: gw_err_auth_token_invalid/);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  void it('accepts Gatehouse access tokens and their refreshed successors', async () => {
    const pair = await gw.built.auth.login('admin', 'correct horse battery staple');
    await client.call('Set', sampleRequest('Set', 'anything'), bearer(pair.accessToken));
    const next = await gw.built.auth.refresh(pair.refreshToken);
    await client.call('Get', sampleRequest('Get', 'anything'), bearer(next.accessToken));
    // The refresh token was rotated: using the old one again revokes the family.
    await assert.rejects(gw.built.auth.refresh(pair.refreshToken));
  });
});
