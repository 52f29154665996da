/**
 * The edge admin API refuses what could never work as asked: policies on L4 (passthrough) routes,
 * backend addresses that are not `host:port`, SNI hosts no client can send, and fields an L4 route
 * has no use for. Every refusal is a 400 with its catalogued code and the field named, and nothing
 * is stored. The configuration's seed goes through the same validator.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { App, ConfigSection } from '#core/app';
import { validateRaw } from '#core/config';
import { runCliCaptured } from '#testing/cli-run';
import { edgePoliciesCommands } from '../../../src/cli/edge-policies.ts';
import { routesCommands } from '../../../src/cli/routes.ts';
import { createEdgeDoor, type EdgeConfig, edgeConfigSchema } from '../../../src/doors/edge/index.ts';
import { createTestPki, type Leaf, type TestPki } from './certs.ts';
import { type ApiAnswer, startTestCore, type TestCore } from './core.ts';
import { testListener } from './harness.ts';

function fixed(value: EdgeConfig): ConfigSection<EdgeConfig> {
  return { current: () => value, subscribe: () => () => {} };
}

const fields = (p: ApiAnswer) =>
  ((p.json['errors'] ?? []) as { field: string }[]).map((e) => e.field).toSorted();

/** An L4 route document with `extra` fields. */
const l4 = (extra: Record<string, unknown>) => ({
  id: 'r',
  listener: 'public',
  host: 'r.site.test',
  backend: '127.0.0.1:9',
  ...extra,
});

void describe('edge admin API validation', () => {
  let pki: TestPki;
  let leaf: Leaf;
  let tc: TestCore;
  let door: App;
  const tokens: Record<string, string> = {};

  before(async () => {
    pki = await createTestPki();
    leaf = await pki.issue('site', ['*.site.test']);
    tc = await startTestCore();
    const config = validateRaw(
      edgeConfigSchema,
      {
        enabled: true,
        listeners: [testListener({ id: 'public' })],
        routes: [
          // An L4 route in the file gets no backendProtocol from the schema's defaults.
          { id: 'pass', listener: 'public', host: 'pass.site.test', backend: '127.0.0.1:9' },
          {
            id: 'web',
            listener: 'public',
            host: 'web.site.test',
            mode: 'l7',
            backend: '127.0.0.1:9',
            certFile: leaf.certFile,
            keyFile: leaf.keyFile,
          },
        ],
      },
      'test',
    );
    door = createEdgeDoor(tc.core, fixed(config));
    await door.provision(tc.core);
    await door.validate();
    await door.start();
    await tc.listen();
    for (const role of ['admin', 'operator'] as const) tokens[role] = await tc.tokenFor(role);
  });

  after(async () => {
    await door.stop(AbortSignal.timeout(1000));
    await tc[Symbol.asyncDispose]();
    await pki[Symbol.asyncDispose]();
  });

  const api = (method: string, path: string, body?: unknown) =>
    tc.api(method, path, tokens['operator'] ?? '', body);
  // What is stored, read from the database rather than the API (whose rate limit these tests
  // would otherwise spend).
  const stored = async (table: 'edge_routes' | 'edge_policies') =>
    (
      await tc.db
        .kysely<Record<typeof table, { id: string }>>()
        .selectFrom(table)
        .select('id')
        .orderBy('id')
        .execute()
    ).map((r) => r.id);
  const routeIds = () => stored('edge_routes');
  const policyIds = () => stored('edge_policies');

  /** Posts a route that must be refused for `field`, and checks nothing was stored. */
  const refusedRoute = async (route: Record<string, unknown>, field: string, detail?: RegExp) => {
    const was = await routeIds();
    const answer = await api('POST', '/api/edge/routes', route);
    assert.equal(answer.status, 400, JSON.stringify(answer.json));
    assert.equal(answer.json['code'], 'GW_ERR_EDGE_ROUTE_INVALID');
    assert.deepEqual(fields(answer), [field], JSON.stringify(answer.json));
    assert.match(String(answer.json['detail']), new RegExp(`"${field}" must be`));
    if (detail !== undefined) assert.match(String(answer.json['detail']), detail);
    assert.deepEqual(await routeIds(), was, 'nothing is stored');
  };

  /** Runs the CLI as an operator against this gateway. */
  const gatehouse = (...argv: string[]) =>
    runCliCaptured(
      [...argv, '--server', tc.url, '--token', tokens['operator'] ?? ''],
      [...routesCommands, ...edgePoliciesCommands],
    );

  void it('refuses a policy on an L4 route, naming the route and why', async () => {
    for (const kind of [
      { kind: 'block-user-agent', value: 'curl' },
      { kind: 'require-header', header: 'x-team' },
    ]) {
      const answer = await api('POST', '/api/edge/policies', { id: 'p', route: 'pass', ...kind });
      assert.equal(answer.status, 400, JSON.stringify(answer.json));
      assert.equal(answer.json['code'], 'GW_ERR_EDGE_POLICY_INVALID');
      assert.deepEqual(fields(answer), ['route']);
      assert.match(String(answer.json['detail']), /l7 route.*"pass" is l4/);
    }
    const unknown = await api('POST', '/api/edge/policies', {
      id: 'p',
      route: 'nope',
      kind: 'block-user-agent',
      value: 'x',
    });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json['code'], 'GW_ERR_EDGE_POLICY_INVALID');
    assert.deepEqual(await policyIds(), [], 'nothing is stored');
    const l7 = await api('POST', '/api/edge/policies', {
      id: 'p',
      route: 'web',
      kind: 'block-user-agent',
      value: 'x',
    });
    assert.equal(l7.status, 201, 'an L7 route takes the same policy');
    assert.deepEqual(await policyIds(), ['p']);
    assert.equal((await api('DELETE', '/api/edge/policies/p')).status, 204);
  });

  void it('a route with policies cannot become L4: routes are not changed in place, and removing one removes its policies', async () => {
    const route = {
      id: 'flip',
      listener: 'public',
      host: 'flip.site.test',
      mode: 'l7',
      backend: '127.0.0.1:9',
      certFile: leaf.certFile,
      keyFile: leaf.keyFile,
    };
    assert.equal((await api('POST', '/api/edge/routes', route)).status, 201);
    const policy = { id: 'guard', route: 'flip', kind: 'require-header', header: 'x-team' };
    assert.equal((await api('POST', '/api/edge/policies', policy)).status, 201);
    const asL4 = { id: 'flip', listener: 'public', host: 'flip.site.test', backend: '127.0.0.1:9' };
    const replaced = await api('POST', '/api/edge/routes', asL4);
    assert.equal(replaced.status, 409);
    assert.equal(replaced.json['code'], 'GW_ERR_EDGE_ROUTE_EXISTS');
    assert.equal((await api('DELETE', '/api/edge/routes/flip')).status, 204);
    assert.deepEqual(await policyIds(), []);
    assert.equal((await api('POST', '/api/edge/routes', asL4)).status, 201);
    const again = await api('POST', '/api/edge/policies', policy);
    assert.equal(again.status, 400);
    assert.equal(again.json['code'], 'GW_ERR_EDGE_POLICY_INVALID');
    assert.deepEqual(await policyIds(), []);
    assert.equal((await api('DELETE', '/api/edge/routes/flip')).status, 204);
  });

  void it('refuses backend addresses whose host or port is not one', async () => {
    for (const backend of [
      '-:80',
      ':80',
      '-a.test:80',
      'a-.test:80',
      'a..test:80',
      '999.1.1.1:80',
      '1.2.3:80',
    ]) {
      await refusedRoute(
        l4({ backend }),
        'backend',
        /host is a DNS name, an IPv4 address or an IPv6 address/,
      );
    }
    await refusedRoute(l4({ backend: `${'a'.repeat(64)}.test:80` }), 'backend', /at most 63/);
    await refusedRoute(l4({ backend: `${'a.'.repeat(127)}test:80` }), 'backend', /at most 253/);
    await refusedRoute(l4({ backend: '2001:db8::1:443' }), 'backend', /IPv6 address goes in brackets/);
    await refusedRoute(l4({ backend: '[2001:db8::zz]:443' }), 'backend');
    for (const backend of ['a.test:0', 'a.test:65536', 'a.test:', 'a.test:http', 'a.test']) {
      await refusedRoute(l4({ backend }), 'backend', /port/);
    }
    for (const [i, backend] of [
      '10.0.0.7:65535',
      '[::1]:1',
      'db_1.internal:5432',
      'Svc.NS.example.:443',
    ].entries()) {
      const ok = await api('POST', '/api/edge/routes', l4({ id: `b${i}`, host: `b${i}.site.test`, backend }));
      assert.equal(ok.status, 201, `${backend}: ${JSON.stringify(ok.json)}`);
      assert.equal((await api('DELETE', `/api/edge/routes/b${i}`)).status, 204);
    }
  });

  void it('refuses SNI hosts no client can send and stores hosts the way the router matches them', async () => {
    await refusedRoute(
      l4({ host: `${'a'.repeat(600)}.site.test` }),
      'host',
      /at most 253 characters \(got 610\)/,
    );
    await refusedRoute(l4({ host: `${'a.'.repeat(125)}test` }), 'host', /at most 253/);
    await refusedRoute(l4({ host: `*.${'a.'.repeat(124)}test` }), 'host', /at most 253/);
    await refusedRoute(l4({ host: `${'a'.repeat(64)}.site.test` }), 'host', /at most 63/);
    for (const host of ['a..b', '.a.test', '-a.test', 'a b.test', 'a.test..', '', 'a:1.test']) {
      await refusedRoute(l4({ host }), 'host');
    }
    for (const host of ['*.*.site.test', 'a*.site.test', '*a.site.test', 'a.*.test']) {
      await refusedRoute(l4({ host }), 'host', /a wildcard is "\*\.parent"/);
    }
    const longest = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    assert.equal(longest.length, 253);
    for (const [host, expected] of [
      ['Upper.Site.TEST.', 'upper.site.test'],
      ['*.Wild.site.test', '*.wild.site.test'],
      [longest.toUpperCase(), longest],
    ] as const) {
      const ok = await api('POST', '/api/edge/routes', l4({ id: 'h', host }));
      assert.equal(ok.status, 201, `${host}: ${JSON.stringify(ok.json)}`);
      assert.equal(ok.json['host'], expected);
      assert.equal((await api('DELETE', '/api/edge/routes/h')).status, 204);
    }
    // A host that differs only in case or a trailing dot is the same host to the router.
    const clash = await api('POST', '/api/edge/routes', l4({ id: 'h', host: 'PASS.site.test.' }));
    assert.equal(clash.status, 409);
    assert.equal(clash.json['code'], 'GW_ERR_EDGE_ROUTE_EXISTS');
  });

  void it('refuses fields an L4 route does not use, naming each', async () => {
    for (const [field, value] of [
      ['certFile', leaf.certFile],
      ['keyFile', leaf.keyFile],
      ['backendProtocol', 'h2c'],
      ['backendProtocol', 'http1'],
      ['backendCaFile', pki.caFile],
    ] as const) {
      await refusedRoute(l4({ [field]: value }), field, /l4 route/);
      await refusedRoute(l4({ mode: 'l4', [field]: value }), field, /l4 route/);
    }
    const all = await api(
      'POST',
      '/api/edge/routes',
      l4({ certFile: leaf.certFile, keyFile: leaf.keyFile, backendProtocol: 'h2' }),
    );
    assert.equal(all.status, 400);
    assert.deepEqual(fields(all), ['backendProtocol', 'certFile', 'keyFile']);
    assert.deepEqual(await routeIds(), ['pass', 'web']);
  });

  void it('CLI: the README example adds a route; an L4 route with --cert is refused with the field named', async () => {
    const add = await gatehouse(
      'routes',
      'add',
      'api',
      '--listener',
      'public',
      '--host',
      'api.example.test',
      '--mode',
      'l4',
      '--backend',
      '10.0.0.5:443',
    );
    assert.equal(add.code, 0, add.err);
    const cert = await gatehouse(
      'routes',
      'add',
      'bad',
      '--listener',
      'public',
      '--host',
      'bad.example.test',
      '--backend',
      '10.0.0.5:443',
      '--cert',
      leaf.certFile,
    );
    assert.notEqual(cert.code, 0);
    assert.match(cert.err, /GW_ERR_EDGE_ROUTE_INVALID/);
    assert.match(cert.err, /"certFile" must be absent on an l4 route/);
    const policy = await gatehouse(
      'policies',
      'add',
      'no-bots',
      '--route',
      'api',
      '--block-user-agent',
      'BadBot',
    );
    assert.notEqual(policy.code, 0);
    assert.match(policy.err, /GW_ERR_EDGE_POLICY_INVALID/);
    assert.deepEqual(await routeIds(), ['api', 'pass', 'web']);
    assert.deepEqual(await policyIds(), []);
    assert.equal((await gatehouse('routes', 'remove', 'api')).code, 0);
  });
});

void describe('edge configuration seed validation', () => {
  const base = {
    enabled: true,
    listeners: [testListener({ id: 'public' })],
  };
  /** Validates and provisions a door on `raw`; returns the message it was refused with. */
  const refused = async (raw: Record<string, unknown>): Promise<string> => {
    const tc = await startTestCore();
    try {
      const config = validateRaw(edgeConfigSchema, { ...base, ...raw }, 'test');
      const door = createEdgeDoor(tc.core, fixed(config));
      const error = await door.provision(tc.core).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof RangeError, `refused: ${String(error)}`);
      const routes = await tc.db
        .kysely<{ edge_routes: { id: string } }>()
        .selectFrom('edge_routes')
        .select('id')
        .execute();
      assert.deepEqual(routes, [], 'nothing is seeded');
      return error.message;
    } finally {
      await tc[Symbol.asyncDispose]();
    }
  };
  const pass = { id: 'pass', listener: 'public', host: 'pass.site.test', backend: '127.0.0.1:9' };

  void it('refuses what the API refuses, naming the entry and field', async () => {
    assert.match(
      await refused({
        routes: [pass],
        policies: [{ id: 'p', route: 'pass', kind: 'block-user-agent', value: 'curl' }],
      }),
      /edge\.policies\[0\]\.route: .*l7 route.*"pass" is l4/,
    );
    assert.match(
      await refused({
        routes: [pass],
        policies: [{ id: 'p', route: 'gone', kind: 'block-user-agent', value: 'x' }],
      }),
      /edge\.policies\[0\]\.route: .*existing route/,
    );
    assert.match(
      await refused({ routes: [pass, { ...pass, id: 'two', host: 'x'.repeat(609) }] }),
      /edge\.routes\[1\]: "host" must be a host name of at most 253 characters/,
    );
    assert.match(
      await refused({ routes: [{ ...pass, backend: '-:80' }] }),
      /edge\.routes\[0\]: "backend" must be/,
    );
    assert.match(
      await refused({ routes: [{ ...pass, backendProtocol: 'h2c', certFile: '/x.pem' }] }),
      /edge\.routes\[0\]: "backendProtocol" must be absent on an l4 route.*"certFile" must be absent/,
    );
  });
});
