import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MainHttpServer } from './server.ts';
import { startTestServer, type TestServer } from './test-fixtures.ts';

function routes(server: MainHttpServer): void {
  server.app.get('/api/whoami', { preHandler: server.authenticate }, (request) => ({
    id: request.principal?.id,
  }));
}

/** A server behind a trusted proxy, so that tests choose the client address. */
const start = () =>
  startTestServer(
    { trustedProxies: ['127.0.0.1/32'], authFailureAudit: { perAddress: 3, perMinute: 5 } },
    routes,
  );

async function call(t: TestServer, clientIp: string, headers: Record<string, string>) {
  const response = await fetch(`${t.url}/api/whoami`, {
    headers: { 'x-forwarded-for': clientIp, ...headers },
  });
  await response.arrayBuffer();
  return response.status;
}

const failures = (t: TestServer) => t.audit.events.filter((e) => e.action.startsWith('auth.failure'));

void describe('audit of refused credentials', () => {
  void it('records a bad API key or token with the reason, address and credential kind, never the secret', async () => {
    await using t = await start();
    assert.equal(await call(t, '203.0.113.7', { 'x-api-key': 'gh_0123456789abcdef_secretpart' }), 401);
    assert.equal(await call(t, '203.0.113.7', { authorization: 'Bearer expired-token' }), 401);
    // Not a refusal of the credential: an internal error is logged, not audited as a failure.
    assert.equal(await call(t, '203.0.113.7', { authorization: 'Bearer crash-token' }), 500);
    const events = failures(t);
    assert.deepEqual(
      events.map((e) => [e.actor, e.action, e.resource, e.decision, e.clientIp, e.details]),
      [
        [
          'anonymous',
          'auth.failure',
          'route:/api/whoami',
          'deny',
          '203.0.113.7',
          { code: 'GW_ERR_AUTH_KEY_INVALID', credential: 'apikey' },
        ],
        [
          'anonymous',
          'auth.failure',
          'route:/api/whoami',
          'deny',
          '203.0.113.7',
          { code: 'GW_ERR_AUTH_TOKEN_EXPIRED', credential: 'token' },
        ],
      ],
    );
    assert.ok(events.every((e) => typeof e.requestId === 'string' && (e.reason ?? '') !== ''));
    assert.doesNotMatch(JSON.stringify(events), /secretpart|expired-token/);
  });

  void it('records at most perAddress per address and perMinute in all, then one summary of the rest', async () => {
    await using t = await start();
    for (let i = 0; i < 10; i++) await call(t, '198.51.100.1', { 'x-api-key': 'wrong' });
    for (let i = 0; i < 3; i++) await call(t, '198.51.100.2', { 'x-api-key': 'wrong' });
    await call(t, '198.51.100.3', { 'x-api-key': 'wrong' });
    // 3 from .1 (its limit), 2 from .2 (the minute's limit of 5); 7 + 1 + 1 left out.
    assert.deepEqual(
      failures(t).map((e) => e.clientIp),
      ['198.51.100.1', '198.51.100.1', '198.51.100.1', '198.51.100.2', '198.51.100.2'],
    );
    t.advance(60_000);
    await call(t, '198.51.100.1', { 'x-api-key': 'wrong' });
    const [summary, next] = failures(t).slice(5);
    assert.equal(summary?.action, 'auth.failure.suppressed');
    assert.equal(summary?.decision, 'deny');
    assert.deepEqual(summary?.details?.['suppressed'], 9);
    assert.deepEqual(summary?.details?.['addresses'], 3);
    assert.deepEqual(summary?.details?.['top'], [
      { address: '198.51.100.1', suppressed: 7 },
      { address: '198.51.100.2', suppressed: 1 },
      { address: '198.51.100.3', suppressed: 1 },
    ]);
    // A new minute: the address is audited again.
    assert.equal(next?.action, 'auth.failure');
    assert.equal(next?.clientIp, '198.51.100.1');
  });

  void it('counts an IPv6 /64 as one address and writes the pending summary at shutdown', async () => {
    // Closing twice is one close: disposing here and at the end of the scope is safe.
    await using t = await start();
    for (let i = 1; i <= 5; i++) await call(t, `2001:db8:0:1::${i}`, { 'x-api-key': 'wrong' });
    assert.equal(failures(t).length, 3);
    await t[Symbol.asyncDispose]();
    const summary = failures(t).at(-1);
    assert.equal(summary?.action, 'auth.failure.suppressed');
    assert.deepEqual(summary?.details?.['top'], [{ address: '2001:db8:0:1::/64', suppressed: 2 }]);
  });
});
