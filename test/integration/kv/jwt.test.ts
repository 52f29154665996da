import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { expectStatus, grpcClient, METHODS, sampleRequest } from './grpc-client.ts';
import { AUDIENCE, ISSUER, type KvGateway, startKvGateway } from './harness.ts';

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

  void it('refetches the key set at most once for a burst of unknown kids', async () => {
    const before = gw.idp.fetches();
    for (let i = 0; i < 5; i += 1) {
      const t = await gw.idp.sign({ roles: ['operator:orders'] }, { kid: `rotated-${i}` });
      await expectStatus(client.call('Get', sampleRequest('Get', 'orders'), bearer(t)), 16);
    }
    assert.ok(gw.idp.fetches() - before <= 1, `${gw.idp.fetches() - before} fetches`);
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
