import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { expectStatus, grpcClient, METHODS, sampleRequest } from './grpc-client.ts';
import { type KvGateway, startKvGateway } from './harness.ts';

const UNAUTHENTICATED = 16;
const PERMISSION_DENIED = 7;
const INVALID_ARGUMENT = 3;
const ABORTED = 10;
const UNAVAILABLE = 14;

void describe('kv door over gRPC (@grpc/grpc-js)', () => {
  let gw: KvGateway;
  let client: ReturnType<typeof grpcClient>;
  let operator: Record<string, string>;
  before(async () => {
    gw = await startKvGateway({
      kv: {
        drivers: {
          embedded: { type: 'memory' },
          // Nothing listens on port 1: calls routed here must fail with UNAVAILABLE.
          dead: { type: 'redis', url: 'redis://127.0.0.1:1', timeout: '300ms' },
        },
        namespaces: { down: 'dead' },
        limits: { authenticationsPerIp: 100_000 },
      },
    });
    client = grpcClient(gw.url, gw.ca);
    operator = { authorization: `Bearer ${await gw.token(['operator:orders', 'operator:down'])}` };
  });
  after(async () => {
    client?.close();
    await gw?.close();
  });

  void it('refuses every method without valid credentials with UNAUTHENTICATED', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer not-a-token' },
      { authorization: 'Basic YWRtaW46YWRtaW4=' },
      { 'x-api-key': 'gh_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
      { authorization: '' },
    ];
    for (const method of METHODS) {
      for (const auth of attempts) {
        await expectStatus(client.call(method, sampleRequest(method, 'orders'), auth), UNAUTHENTICATED);
      }
    }
    const { body } = await gw.core.metrics.render();
    assert.match(body, /proxy_auth_failures_total\{reason="auth_required"\} \d+/);
    // Each refusal is an audit event naming the method it tried.
    const denied = await gw.core.audit.query({ action: 'kv.authenticate', decision: 'deny', limit: 1000 });
    for (const method of METHODS) {
      assert.ok(
        denied.events.some((e) => e.resource === `kv:${method}` && e.actor === 'anonymous'),
        `kv.authenticate denial for ${method}`,
      );
    }
  });

  void it('serves every method to an operator of the namespace', async () => {
    const set = await client.call<{ version: string }>(
      'Set',
      {
        namespace: 'orders',
        key: 'o-1',
        value: Buffer.from([0, 1, 2, 255]),
        ttlSeconds: 600,
        metadata: '{"owner":"billing"}',
      },
      operator,
    );
    assert.ok(Number(set.version) > 0);
    assert.ok(set.headers.get('ratelimit-remaining').length > 0, 'quota headers are sent');
    const got = await client.call<{
      found: boolean;
      entry: { value: Buffer; version: string; metadata: string; ttlMs: string };
    }>('Get', { namespace: 'orders', key: 'o-1' }, operator);
    assert.equal(got.found, true);
    assert.deepEqual([...got.entry.value], [0, 1, 2, 255]);
    assert.equal(got.entry.version, set.version);
    assert.equal(got.entry.metadata, '{"owner":"billing"}');
    assert.ok(Number(got.entry.ttlMs) > 0 && Number(got.entry.ttlMs) <= 600_000);
    assert.deepEqual(await strip(client.call('Exists', { namespace: 'orders', key: 'o-1' }, operator)), {
      exists: true,
    });
    const batch = await client.call<{ versions: string[] }>(
      'BatchSet',
      {
        namespace: 'orders',
        items: [
          { key: 'o-2', value: Buffer.from('2') },
          { key: 'o-3', value: Buffer.from('3') },
        ],
      },
      operator,
    );
    assert.equal(batch.versions.length, 2);
    const many = await client.call<{ results: { key: string; found: boolean }[] }>(
      'BatchGet',
      { namespace: 'orders', keys: ['o-3', 'nope', 'o-2'] },
      operator,
    );
    assert.deepEqual(
      many.results.map((r) => [r.key, r.found]),
      [
        ['o-3', true],
        ['nope', false],
        ['o-2', true],
      ],
    );
    assert.deepEqual(await strip(client.call('Persist', { namespace: 'orders', key: 'o-1' }, operator)), {
      updated: true,
    });
    const ttl = await client.call<{ found: boolean; expires: boolean }>(
      'GetTTL',
      { namespace: 'orders', key: 'o-1' },
      operator,
    );
    assert.deepEqual([ttl.found, ttl.expires], [true, false]);
    assert.deepEqual(
      await strip(client.call('Expire', { namespace: 'orders', key: 'o-1', ttlSeconds: 30 }, operator)),
      {
        updated: true,
      },
    );
    const page1 = await client.call<{ keys: string[]; nextPageToken: string }>(
      'List',
      { namespace: 'orders', prefix: 'o-', pageSize: 2 },
      operator,
    );
    assert.deepEqual(page1.keys, ['o-1', 'o-2']);
    const page2 = await client.call<{ keys: string[]; nextPageToken: string }>(
      'List',
      { namespace: 'orders', prefix: 'o-', pageSize: 2, pageToken: page1.nextPageToken },
      operator,
    );
    assert.deepEqual([page2.keys, page2.nextPageToken], [['o-3'], '']);
    assert.deepEqual(await strip(client.call('Delete', { namespace: 'orders', key: 'o-3' }, operator)), {
      deleted: true,
    });
    assert.deepEqual(await strip(client.call('Delete', { namespace: 'orders', key: 'o-3' }, operator)), {
      deleted: false,
    });
  });

  void it('compares and sets by version, answering ABORTED on a stale version', async () => {
    const first = await client.call<{ version: string }>(
      'Set',
      { namespace: 'orders', key: 'cas', value: Buffer.from('a'), expectedVersion: '0' },
      operator,
    );
    await expectStatus(
      client.call(
        'Set',
        { namespace: 'orders', key: 'cas', value: Buffer.from('b'), expectedVersion: '0' },
        operator,
      ),
      ABORTED,
    );
    await client.call(
      'Set',
      { namespace: 'orders', key: 'cas', value: Buffer.from('c'), expectedVersion: first.version },
      operator,
    );
    await expectStatus(
      client.call(
        'Set',
        { namespace: 'orders', key: 'cas', value: Buffer.from('d'), expectedVersion: first.version },
        operator,
      ),
      ABORTED,
    );
  });

  void it('keeps principals inside their namespaces and readers read-only', async () => {
    const reader = { authorization: `Bearer ${await gw.token(['reader:orders'])}` };
    const other = { authorization: `Bearer ${await gw.token(['operator:billing'])}` };
    const wildcard = { authorization: `Bearer ${await gw.token(['admin:*'])}` };
    for (const method of METHODS) {
      await expectStatus(client.call(method, sampleRequest(method, 'orders'), other), PERMISSION_DENIED);
      // A "*" from a token claim is ignored: it grants nothing.
      await expectStatus(client.call(method, sampleRequest(method, 'orders'), wildcard), PERMISSION_DENIED);
    }
    for (const method of ['Set', 'Delete', 'BatchSet', 'Expire', 'Persist'] as const) {
      await expectStatus(client.call(method, sampleRequest(method, 'orders'), reader), PERMISSION_DENIED);
    }
    for (const method of ['Get', 'Exists', 'BatchGet', 'GetTTL', 'List'] as const) {
      await client.call(method, sampleRequest(method, 'orders'), reader);
    }
    const key = await gw.apiKey([{ role: 'reader', namespace: 'orders' }]);
    await client.call('Get', sampleRequest('Get', 'orders'), { 'x-api-key': key });
    await expectStatus(
      client.call('Set', sampleRequest('Set', 'orders'), { 'x-api-key': key }),
      PERMISSION_DENIED,
    );
    await expectStatus(
      client.call('Get', sampleRequest('Get', 'billing'), { 'x-api-key': key }),
      PERMISSION_DENIED,
    );
    const page = await gw.core.audit.query({ action: 'kv.Set', decision: 'deny', limit: 100 });
    assert.ok(
      page.events.some((e) => e.resource === 'kv:orders'),
      'denials are audited',
    );
    const allowed = await gw.core.audit.query({ action: 'kv.Get', decision: 'allow', limit: 100 });
    assert.ok(allowed.events.length > 0, 'allowed calls are audited');
  });

  void it('serves a namespace named like a property of every object from the default driver', async () => {
    // Routing looks namespaces up in the configuration's map, where "constructor" (the one
    // DNS-safe name among Object's properties) once found Object and failed calls as INTERNAL.
    const namespace = 'constructor';
    const own = { authorization: `Bearer ${await gw.token([`operator:${namespace}`])}` };
    await client.call('Set', { namespace, key: 'k', value: Buffer.from('v') }, own);
    const got = await client.call<{ found: boolean; entry: { value: Buffer } }>(
      'Get',
      { namespace, key: 'k' },
      own,
    );
    assert.equal(got.found, true);
    assert.equal(Buffer.from(got.entry.value).toString(), 'v');
  });

  void it('answers bad fields with INVALID_ARGUMENT naming the field', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['Get', { namespace: 'Orders', key: 'k' }, 'namespace'],
      ['Get', { namespace: 'orders', key: 'a\0b' }, 'key'],
      ['Get', { namespace: 'orders', key: 'x'.repeat(1025) }, 'key'],
      ['Set', { namespace: 'orders', key: 'k', ttlSeconds: 31_536_001 }, 'ttl_seconds'],
      ['Set', { namespace: 'orders', key: 'k', metadata: '{not json' }, 'metadata'],
      ['Expire', { namespace: 'orders', key: 'k', ttlSeconds: 0 }, 'ttl_seconds'],
      ['List', { namespace: 'orders', pageSize: 5000 }, 'page_size'],
      ['List', { namespace: 'orders', pageToken: '%%%' }, 'page_token'],
      ['BatchGet', { namespace: 'orders', keys: [] }, 'keys'],
      ['BatchSet', { namespace: 'orders', items: [{ key: 'ok' }, { key: '' }] }, 'items[1].key'],
      ['BatchSet', { namespace: 'orders', items: [{ key: 'a', metadata: '{x' }] }, 'items[0].metadata'],
      [
        'BatchSet',
        { namespace: 'orders', items: [{ key: 'a' }, { key: 'b', ttlSeconds: 31_536_001 }] },
        'items[1].ttl_seconds',
      ],
      ['BatchGet', { namespace: 'orders', keys: ['ok', 'a\0b'] }, 'keys[1]'],
    ];
    for (const [method, request, field] of cases) {
      const e = await expectStatus(client.call(method as 'Get', request, operator), INVALID_ARGUMENT);
      assert.ok(e.details.includes(`"${field}"`), `${method} ${field}: ${e.details}`);
      assert.equal(e.metadata.get('gatehouse-error-code')[0], 'GW_ERR_KV_INVALID_ARGUMENT');
    }
  });

  void it('reports a dead backend as UNAVAILABLE with an errorId and no internal detail', async () => {
    const started = performance.now();
    const e = await expectStatus(client.call('Get', { namespace: 'down', key: 'k' }, operator), UNAVAILABLE);
    assert.ok(performance.now() - started < 3000, 'within the driver deadline');
    assert.equal(e.details, 'Backend unavailable');
    assert.match(String(e.metadata.get('gatehouse-error-id')[0]), /^[0-9a-f-]{36}$/);
    assert.doesNotMatch(e.details, /redis|127\.0\.0\.1|ECONNREFUSED|at /i);
    // The server log has the same errorId with the full cause.
    const errorId = String(e.metadata.get('gatehouse-error-id')[0]);
    const line = gw
      .logs()
      .split('\n')
      .find((l) => l.includes(errorId));
    assert.ok(line !== undefined, 'the errorId is in the server log');
    assert.match(line, /"cause"/);
    assert.match(line, /redis/);
    // The other namespace is unaffected.
    await client.call('Get', { namespace: 'orders', key: 'k' }, operator);
    const health = await gw.core.health.check(3000);
    assert.equal(health.checks['door:kv']?.ok, false, 'readiness names the dead driver');
    assert.match(String(health.checks['door:kv']?.detail), /dead/);
  });

  void it('exports the request, auth, connection and driver metrics', async () => {
    const { body } = await gw.core.metrics.render();
    assert.match(body, /proxy_requests_total\{method="Get",status="OK",namespace="orders"\} \d+/);
    // Denied on a namespace served before: its label; on one never served (billing): "".
    assert.match(
      body,
      /proxy_requests_total\{method="Get",status="PERMISSION_DENIED",namespace="orders"\} \d+/,
    );
    assert.match(body, /proxy_requests_total\{method="Get",status="PERMISSION_DENIED",namespace=""\} \d+/);
    assert.doesNotMatch(body, /namespace="billing"/);
    assert.match(body, /proxy_request_duration_seconds_bucket\{le="[^"]+",method="Set",namespace="orders"\}/);
    assert.match(body, /proxy_active_connections [1-9]/);
    assert.match(
      body,
      /gatehouse_kv_driver_duration_seconds_count\{driver="embedded",type="memory",operation="get",outcome="ok"\}/,
    );
  });
});

async function strip(p: Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
  const { headers: _headers, ...rest } = await p;
  return rest;
}
