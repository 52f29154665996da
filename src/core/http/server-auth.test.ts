import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { MainHttpServer } from './server.ts';
import { startTestServer, type TestServer } from './test-fixtures.ts';

function routes(server: MainHttpServer): void {
  server.app.get('/api/whoami', { preHandler: server.authenticate }, (request) => ({
    id: request.principal?.id,
    ip: request.clientIp,
  }));
  server.app.get('/api/users', { preHandler: server.requirePermission('users:read') }, () => ({ users: [] }));
  server.app.get(
    '/api/artifacts/:ns',
    {
      preHandler: server.requirePermission('artifacts:read', (request) => ({
        type: 'artifact',
        namespace: (request.params as { ns: string }).ns,
      })),
    },
    () => ({ ok: true }),
  );
  server.app.get('/public', (request) => ({ ip: request.clientIp }));
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

let t: TestServer;
let proxied: TestServer;

before(async () => {
  t = await startTestServer(
    { rateLimit: { rate: 1, burst: 3 }, cors: { origins: ['https://console.example.test'] } },
    routes,
  );
  proxied = await startTestServer({ trustedProxies: ['127.0.0.1/32'] }, routes);
});
after(async () => {
  await t[Symbol.asyncDispose]();
  await proxied[Symbol.asyncDispose]();
});

async function get(server: TestServer, path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}${path}`, { headers });
  const body = (await response.json()) as Record<string, unknown>;
  // Each test uses its own bucket; move the limiter clock so earlier tests never throttle later ones.
  server.advance(60_000);
  return { status: response.status, headers: response.headers, body };
}

void describe('authentication and authorization', () => {
  void it('authenticates a bearer token and an X-Api-Key', async () => {
    assert.deepEqual((await get(t, '/api/whoami', bearer('admin-token'))).body, {
      id: 'user:admin',
      ip: '127.0.0.1',
    });
    assert.equal((await get(t, '/api/whoami', { 'x-api-key': 'k_auditor' })).body['id'], 'key:k_auditor');
  });

  void it('refuses missing, unknown, expired and malformed credentials', async () => {
    const none = await get(t, '/api/whoami');
    assert.equal(none.status, 401);
    assert.equal(none.body['code'], 'GW_ERR_AUTH_REQUIRED');
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal((await get(t, '/api/whoami', bearer('forged'))).body['code'], 'GW_ERR_AUTH_TOKEN_INVALID');
    assert.equal(
      (await get(t, '/api/whoami', bearer('expired-token'))).body['code'],
      'GW_ERR_AUTH_TOKEN_EXPIRED',
    );
    assert.equal(
      (await get(t, '/api/whoami', { 'x-api-key': 'k_revoked' })).body['code'],
      'GW_ERR_AUTH_KEY_INVALID',
    );
    // Not a bearer scheme: no credentials at all.
    assert.equal((await get(t, '/api/whoami', { authorization: 'Basic YWRtaW46YWRtaW4=' })).status, 401);
    assert.equal(
      (await get(t, '/api/whoami', { authorization: 'Bearer' })).body['code'],
      'GW_ERR_AUTH_REQUIRED',
    );
  });

  void it('refuses a credential header sent twice, whichever of them is valid', async () => {
    // node keeps only the first of repeated Authorization and x-api-key headers; fetch would
    // join them into one, so the request is written with its raw header list (Host included).
    const raw = (headers: string[]) =>
      new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
        const req = httpRequest(
          `${t.url}/api/whoami`,
          { headers: ['Host', 'gatehouse.test', ...headers] },
          (res) => {
            const parts: Buffer[] = [];
            res.on('data', (c: Buffer) => parts.push(c));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                body: JSON.parse(Buffer.concat(parts).toString()) as Record<string, unknown>,
              }),
            );
          },
        );
        req.on('error', reject);
        req.end();
      });
    for (const [headers, code] of [
      [
        ['Authorization', 'Bearer admin-token', 'Authorization', 'Bearer forged'],
        'GW_ERR_AUTH_TOKEN_INVALID',
      ],
      [
        ['Authorization', 'Bearer forged', 'authorization', 'Bearer admin-token'],
        'GW_ERR_AUTH_TOKEN_INVALID',
      ],
      [['x-api-key', 'k_auditor', 'X-Api-Key', 'k_revoked'], 'GW_ERR_AUTH_KEY_INVALID'],
    ] as const) {
      const answer = await raw([...headers]);
      t.advance(60_000);
      assert.equal(answer.status, 401, headers.join(' '));
      assert.equal(answer.body['code'], code, headers.join(' '));
    }
    // Once each is as it always was.
    const once = await raw(['Authorization', 'Bearer admin-token']);
    t.advance(60_000);
    assert.equal(once.body['id'], 'user:admin');
  });

  void it('turns an authenticator crash into GW_ERR_INTERNAL without its message', async () => {
    const crashed = await get(t, '/api/whoami', bearer('crash-token'));
    assert.equal(crashed.status, 500);
    assert.equal(crashed.body['code'], 'GW_ERR_INTERNAL');
    assert.doesNotMatch(JSON.stringify(crashed.body), /jwks|deadbeef/);
  });

  void it('authorizes by role and namespace, denying with 403 and an audit event', async () => {
    assert.equal((await get(t, '/api/users', bearer('admin-token'))).status, 200);
    assert.equal((await get(t, '/api/artifacts/team-a', bearer('consumer-token'))).status, 200);
    const before = t.audit.events.length;
    const escalate = await get(t, '/api/users', bearer('consumer-token'));
    assert.equal(escalate.status, 403);
    assert.equal(escalate.body['code'], 'GW_ERR_RBAC_DENIED');
    const other = await get(t, '/api/artifacts/team-b', bearer('consumer-token'));
    assert.equal(other.status, 403);
    assert.equal(other.body['resource'], 'artifact:team-b');
    const events = t.audit.events.slice(before);
    assert.equal(events.length, 2);
    assert.deepEqual(
      events.map((e) => [e.actor, e.action, e.resource, e.decision, e.clientIp]),
      [
        ['user:carol', 'users:read', 'users', 'deny', '127.0.0.1'],
        ['user:carol', 'artifacts:read', 'artifact:team-b', 'deny', '127.0.0.1'],
      ],
    );
    assert.ok(events.every((e) => typeof e.requestId === 'string' && e.reason !== undefined));
    assert.equal((await get(t, '/api/users')).status, 401);
  });

  void it('enforces a principal allow-list on the real client address', async () => {
    const direct = await get(t, '/api/whoami', { ...bearer('office-token'), 'x-forwarded-for': '10.1.2.3' });
    assert.equal(direct.status, 403);
    assert.equal(direct.body['code'], 'GW_ERR_AUTH_IP_NOT_ALLOWED');
    const viaProxy = await get(proxied, '/api/whoami', {
      ...bearer('office-token'),
      'x-forwarded-for': '10.1.2.3',
    });
    assert.equal(viaProxy.status, 200);
    assert.equal(viaProxy.body['ip'], '10.1.2.3');
    const spoofedChain = await get(proxied, '/api/whoami', {
      ...bearer('office-token'),
      'x-forwarded-for': '10.9.9.9, 192.0.2.7',
    });
    assert.equal(spoofedChain.status, 403, 'only the hop the trusted proxy saw counts');
    const v6 = await get(proxied, '/public', { 'x-forwarded-for': 'fd00::1' });
    assert.equal(v6.body['ip'], 'fd00::1');
  });
});

void describe('rate limit and CORS', () => {
  void it('sends RateLimit headers and 429 with Retry-After when the bucket is empty', async () => {
    const headers = bearer('consumer-token');
    const seen: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 4; i++) {
      last = await fetch(`${t.url}/public`, { headers });
      seen.push(last.status);
      if (i < 3) assert.equal(last.headers.get('ratelimit-remaining'), String(2 - i));
      await last.arrayBuffer();
    }
    assert.deepEqual(seen, [200, 200, 200, 429]);
    assert.equal(last?.headers.get('ratelimit-limit'), '3');
    assert.equal(last?.headers.get('retry-after'), '1');
    // Another principal and anonymous callers have their own buckets.
    assert.equal((await fetch(`${t.url}/public`, { headers: bearer('admin-token') })).status, 200);
    t.advance(1000);
    assert.equal((await fetch(`${t.url}/public`, { headers })).status, 200);
    t.advance(60_000);
  });

  void it('limits anonymous callers per address and never throttles probes', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await fetch(`${t.url}/public`)).status);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    for (let i = 0; i < 5; i++) assert.equal((await fetch(`${t.url}/healthz`)).status, 200);
    t.advance(60_000);
  });

  void it('lets requests through when the limiter backend fails', async () => {
    t.limiters.failing = true;
    try {
      for (let i = 0; i < 5; i++) assert.equal((await fetch(`${t.url}/public`)).status, 200);
    } finally {
      t.limiters.failing = false;
    }
  });

  void it('allows only configured origins', async () => {
    const allowed = await fetch(`${t.url}/public`, { headers: { origin: 'https://console.example.test' } });
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://console.example.test');
    const refused = await fetch(`${t.url}/public`, { headers: { origin: 'https://evil.example.test' } });
    assert.equal(refused.headers.get('access-control-allow-origin'), null);
    const preflight = await fetch(`${t.url}/api/users`, {
      method: 'OPTIONS',
      headers: { origin: 'https://console.example.test', 'access-control-request-method': 'GET' },
    });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    const badPreflight = await fetch(`${t.url}/api/users`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example.test', 'access-control-request-method': 'GET' },
    });
    assert.equal(badPreflight.headers.get('access-control-allow-origin'), null);
    assert.equal(badPreflight.headers.get('access-control-allow-methods'), null);
    const off = await fetch(`${proxied.url}/public`, { headers: { origin: 'https://console.example.test' } });
    assert.equal(off.headers.get('access-control-allow-origin'), null);
    t.advance(60_000);
  });
});
