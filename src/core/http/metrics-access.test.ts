import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startTestServer } from './test-fixtures.ts';

const TOKEN = 'scrape-token-0123456789abcdef0123456789';

async function scrape(url: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/metrics`, { headers });
  const body = await response.text();
  return { status: response.status, body, type: response.headers.get('content-type') ?? '' };
}

const code = (body: string) => (JSON.parse(body) as { code: string }).code;

void describe('/metrics access', () => {
  void it('serves loopback scrapers by default', async () => {
    await using t = await startTestServer();
    const r = await scrape(t.url);
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain/);
    assert.match(r.body, /gatehouse_http_requests_total|# HELP/);
  });

  void it('refuses an anonymous scraper outside the allow-list, and lets the token and accounts in', async () => {
    await using t = await startTestServer({ metrics: { allowedCidrs: [], token: TOKEN } });
    const anonymous = await scrape(t.url);
    assert.equal(anonymous.status, 401);
    assert.equal(code(anonymous.body), 'GW_ERR_AUTH_REQUIRED');
    assert.doesNotMatch(anonymous.body, /# HELP/);

    const wrong = await scrape(t.url, { authorization: `Bearer ${TOKEN.slice(0, -1)}x` });
    assert.equal(wrong.status, 401);
    const short = await scrape(t.url, { authorization: 'Bearer x' });
    assert.equal(short.status, 401);
    const basic = await scrape(t.url, {
      authorization: `Basic ${Buffer.from(`:${TOKEN}`).toString('base64')}`,
    });
    assert.equal(basic.status, 401);

    assert.equal((await scrape(t.url, { authorization: `Bearer ${TOKEN}` })).status, 200);
    assert.equal((await scrape(t.url, { authorization: 'Bearer admin-token' })).status, 200);
    assert.equal((await scrape(t.url, { 'x-api-key': 'k_auditor' })).status, 200);
    // An account restricted to another network is refused here, as on every route.
    const office = await scrape(t.url, { authorization: 'Bearer office-token' });
    assert.equal(office.status, 403);
    assert.equal(code(office.body), 'GW_ERR_AUTH_IP_NOT_ALLOWED');
  });

  void it('checks the allow-list against the real client address behind a trusted proxy', async () => {
    await using t = await startTestServer({
      trustedProxies: ['127.0.0.1'],
      metrics: { allowedCidrs: ['10.0.0.0/8'] },
    });
    assert.equal((await scrape(t.url, { 'x-forwarded-for': '10.1.2.3' })).status, 200);
    assert.equal((await scrape(t.url, { 'x-forwarded-for': '203.0.113.9' })).status, 401);
    // The proxy's own address is not the client's.
    assert.equal((await scrape(t.url)).status, 401);
  });

  void it('refuses a token shorter than 32 characters and a malformed CIDR at validation', async () => {
    await assert.rejects(startTestServer({ metrics: { token: 'short' } }), /metrics\.token/);
    await assert.rejects(startTestServer({ metrics: { allowedCidrs: ['10.0.0.0/33'] } }), /allowedCidrs/);
  });
});
