/**
 * The edge admin API refuses what could never work as asked: policies on L4 (passthrough) routes,
 * backend addresses that are not `host:port`, SNI hosts no client can send, and fields an L4 route
 * has no use for. Every refusal is a 400 with its catalogued code and the field named, and nothing
 * is stored. The configuration's seed goes through the same validator.
 */
import assert from 'node:assert/strict';
import { type AddressInfo, createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { App, ConfigSection } from '#core/app';
import { ConfigValidationError, object, validateRaw } from '#core/config';
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

  void it('refuses fields no route, policy or listener has, naming each (a typo must not make another route)', async () => {
    const typo = {
      id: 'typo',
      listener: 'public',
      host: 'typo.site.test',
      mode: 'l7',
      backend: '127.0.0.1:18081',
      backendProtcol: 'h2c',
      certFile: leaf.certFile,
      keyFile: leaf.keyFile,
    };
    await refusedRoute(typo, 'backendProtcol', /not a field of a route \(did you mean "backendProtocol"\?\)/);
    await refusedRoute(l4({ Host: 'x.site.test' }), 'Host', /did you mean "host"/);
    await refusedRoute(
      l4({ extra: 1 }),
      'extra',
      /not a field of a route; the fields are id, listener, host/,
    );
    const two = await api('POST', '/api/edge/routes', l4({ extra: 1, backend: '-:80' }));
    assert.equal(two.status, 400);
    assert.deepEqual(fields(two), ['backend', 'extra'], 'every problem at once');

    const limit = (await api('GET', '/api/edge/listeners/public')).json['maxConnections'];
    const policy = (extra: Record<string, unknown>) => ({ id: 'p', route: 'web', ...extra });
    const userAgent = { kind: 'block-user-agent', value: 'x' };
    const policies = ['POST', '/api/edge/policies', 'GW_ERR_EDGE_POLICY_INVALID'] as const;
    const listener = ['PATCH', '/api/edge/listeners/public', 'GW_ERR_EDGE_LISTENER_LIMIT_INVALID'] as const;
    for (const [[method, path, code], body, field] of [
      [policies, policy({ ...userAgent, extra: 1 }), 'extra'],
      [policies, policy({ ...userAgent, header: 'x-team' }), 'header'],
      [policies, policy({ kind: 'require-header', headr: 'x-team' }), 'headr'],
      [policies, policy({ kind: 'require-header', header: 'x-team', valeu: 'a' }), 'valeu'],
      [listener, { maxConnections: 5000, extra: 1 }, 'extra'],
      [listener, { maxConnection: 5000 }, 'maxConnection'],
      [listener, { maxConnections: 0 }, 'maxConnections'],
      [listener, { maxConnections: 1_000_001 }, 'maxConnections'],
      [listener, { maxConnections: '5000' }, 'maxConnections'],
    ] as const) {
      const answer = await api(method, path, body);
      assert.equal(answer.status, 400, JSON.stringify(answer.json));
      assert.equal(answer.json['code'], code);
      assert.ok(fields(answer).includes(field), JSON.stringify(answer.json));
      assert.match(String(answer.json['detail']), new RegExp(`"${field}" must be`));
    }
    assert.deepEqual(await policyIds(), [], 'nothing is stored');
    assert.equal((await api('GET', '/api/edge/listeners/public')).json['maxConnections'], limit, 'unchanged');
    const ok = await api('PATCH', '/api/edge/listeners/public', { maxConnections: 5000 });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(ok.json['maxConnections'], 5000);
    assert.deepEqual(await routeIds(), ['pass', 'web']);
  });

  void it('an l7 route without certificates is told of both keys in words', async () => {
    const bare = {
      id: 'bare',
      listener: 'public',
      host: 'bare.site.test',
      mode: 'l7',
      backend: '127.0.0.1:9',
    };
    const answer = await api('POST', '/api/edge/routes', bare);
    assert.equal(answer.status, 400);
    assert.deepEqual(fields(answer), ['certFile', 'keyFile']);
    assert.equal(
      answer.json['detail'],
      '"certFile" must be a PEM file path: an l7 route terminates TLS, so it needs both certFile (the certificate chain) and keyFile (its private key); "keyFile" must be a PEM file path: an l7 route terminates TLS, so it needs both certFile (the certificate chain) and keyFile (its private key)',
    );
    await refusedRoute({ ...bare, certFile: leaf.certFile }, 'keyFile', /needs both certFile .* and keyFile/);
  });

  void it('refuses a TLS backend route whose backendCaFile cannot be read, as it refuses certificates', async () => {
    const route = {
      id: 'no-ca',
      listener: 'public',
      host: 'no-ca.site.test',
      mode: 'l7',
      backend: '127.0.0.1:9',
      backendProtocol: 'https',
      certFile: leaf.certFile,
      keyFile: leaf.keyFile,
    };
    await refusedRoute({ ...route, backendCaFile: `${leaf.certFile}.missing` }, 'backendCaFile', /readable/);
    // A file that is no PEM certificate is no CA either.
    await refusedRoute({ ...route, backendCaFile: leaf.keyFile }, 'backendCaFile', /CA certificates/);
  });

  void it('an l4 route shows no backend protocol (the table shows tcp); an l7 route shows its own', async () => {
    const { routes } = (await api('GET', '/api/edge/routes')).json as { routes: Record<string, unknown>[] };
    const byId = new Map(routes.map((r) => [r['id'], r]));
    assert.equal(byId.get('pass')?.['mode'], 'l4');
    assert.ok(!('backendProtocol' in (byId.get('pass') ?? {})), JSON.stringify(byId.get('pass')));
    assert.equal(byId.get('web')?.['backendProtocol'], 'http1');
    const added = await api('POST', '/api/edge/routes', l4({ id: 'shown', host: 'shown.site.test' }));
    assert.equal(added.status, 201);
    assert.ok(!('backendProtocol' in added.json), JSON.stringify(added.json));
    // What the API lists can be sent back as it is.
    assert.equal((await api('DELETE', '/api/edge/routes/shown')).status, 204);
    assert.equal((await api('POST', '/api/edge/routes', added.json)).status, 201);
    assert.equal((await api('DELETE', '/api/edge/routes/shown')).status, 204);
    const table = await gatehouse('routes', 'list');
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, /pass\s+public\s+pass\.site\.test\s+l4\s+127\.0\.0\.1:9\s+tcp/);
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
  /**
   * Validates `raw` as `config validate`, `serve` and a reload do (the section's schema); returns
   * the issues, each with the key path it names.
   */
  const refused = (raw: Record<string, unknown>): string => {
    const error = (() => {
      try {
        validateRaw(edgeConfigSchema, { ...base, ...raw }, 'test');
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    assert.ok(error instanceof ConfigValidationError, `refused: ${String(error)}`);
    return error.issues.map((i) => `${i.path}: ${JSON.stringify(i.value)}; ${i.expected}`).join('\n');
  };
  const pass = { id: 'pass', listener: 'public', host: 'pass.site.test', backend: '127.0.0.1:9' };
  const web = {
    ...pass,
    id: 'web',
    host: 'web.site.test',
    mode: 'l7',
    certFile: '/c.pem',
    keyFile: '/k.pem',
  };

  void it('refuses what the API refuses, naming the key', () => {
    assert.match(
      refused({
        routes: [pass],
        policies: [{ id: 'p', route: 'pass', kind: 'block-user-agent', value: 'curl' }],
      }),
      /^policies\[0\]\.route: "pass"; .*l7 route.*"pass" is l4/,
    );
    assert.match(
      refused({
        routes: [pass],
        policies: [{ id: 'p', route: 'gone', kind: 'block-user-agent', value: 'x' }],
      }),
      /^policies\[0\]\.route: .*existing route/,
    );
    assert.match(
      refused({ routes: [pass, { ...pass, id: 'two', host: 'x'.repeat(609) }] }),
      /^routes\[1\]\.host: "x+"; a host name of at most 253 characters/,
    );
    assert.match(refused({ routes: [{ ...pass, host: 'a..b' }] }), /^routes\[0\]\.host: "a\.\.b"; /);
    assert.match(refused({ routes: [{ ...pass, backend: '-:80' }] }), /^routes\[0\]\.backend: "-:80"; /);
    assert.match(
      refused({ routes: [{ ...pass, backendProtocol: 'h2c', certFile: '/x.pem' }] }),
      /^routes\[0\]\.backendProtocol: "h2c"; absent on an l4 route.*\nroutes\[0\]\.certFile: "\/x\.pem"; absent/,
    );
    assert.match(
      refused({ routes: [{ ...pass, backendProtcol: 'h2c' }] }),
      /^routes\[0\]\.backendProtcol: "h2c"; no such key/,
    );
    assert.match(
      refused({
        routes: [pass],
        policies: [{ id: 'p', route: 'pass', kind: 'require-header', header: 'x-a', extra: 1 }],
      }),
      /policies\[0\]\.extra: 1; no such key/,
    );
  });

  void it('an l7 route without its files is told of both keys', () => {
    const { certFile: _c, keyFile: _k, ...bare } = web;
    const both = refused({ routes: [bare] });
    assert.match(
      both,
      /^routes\[0\]\.certFile: undefined; a PEM file path: an l7 route terminates TLS, so it needs both certFile \(.*\) and keyFile/,
    );
    assert.match(both, /\nroutes\[0\]\.keyFile: undefined; a PEM file path/);
    assert.doesNotMatch(both, /"certFile" must be certFile/);
    const key = refused({ routes: [{ ...web, keyFile: undefined }] });
    assert.match(key, /^routes\[0\]\.keyFile: .*needs both certFile .* and keyFile/);
    assert.doesNotMatch(key, /routes\[0\]\.certFile/);
  });

  void it('checks firewall and trusted-proxy CIDR blocks at validation, naming the key', () => {
    const firewall = (rules: Record<string, unknown>) =>
      refused({ listeners: [testListener({ id: 'public', firewall: rules })] });
    assert.match(
      firewall({ deny: ['192.0.2.0/24', '10.0.0.0/33'] }),
      /^listeners\[0\]\.firewall\.deny\[1\]: "10\.0\.0\.0\/33"; an IP address or CIDR block \(prefix length above 32\)$/,
    );
    assert.match(
      firewall({ allow: ['2001:db8::/129'] }),
      /^listeners\[0\]\.firewall\.allow\[0\]: .*above 128/,
    );
    assert.match(
      firewall({ allow: ['10.0.0.x/8'] }),
      /^listeners\[0\]\.firewall\.allow\[0\]: .*not an IP address/,
    );
    assert.match(firewall({ deny: ['10.0.0.0/x'] }), /^listeners\[0\]\.firewall\.deny\[0\]: .*not a number/);
    assert.match(
      refused({
        listeners: [testListener({ id: 'public', proxyProtocol: true, trustedProxies: ['10.0.0.0/40'] })],
      }),
      /^listeners\[0\]\.trustedProxies\[0\]: "10\.0\.0\.0\/40"; .*above 32/,
    );
    const ok = validateRaw(
      edgeConfigSchema,
      {
        ...base,
        listeners: [
          testListener({
            id: 'public',
            firewall: { allow: ['10.0.0.0/8', '::1', '2001:db8::/32'], deny: ['192.0.2.1'] },
          }),
        ],
      },
      'test',
    );
    assert.deepEqual(ok.listeners[0]?.firewall.allow, ['10.0.0.0/8', '::1', '2001:db8::/32']);
  });

  void it('checks entries against each other at validation: ids, listeners, hosts, PROXY peers', () => {
    assert.match(
      refused({ listeners: [testListener({ id: 'public' }), testListener({ id: 'public' })] }),
      /^listeners\[1\]\.id: "public"; an id no other entry has \("public" is also edge\.listeners\[0\]\.id\)$/,
    );
    assert.match(
      refused({ listeners: [testListener({ id: 'public', proxyProtocol: true })] }),
      /^listeners\[0\]\.trustedProxies: \[\]; at least one trusted peer/,
    );
    assert.match(
      refused({ routes: [{ ...pass, listener: 'private' }] }),
      /^routes\[0\]\.listener: "private"; a configured listener id \(edge\.listeners has "public"\)$/,
    );
    assert.match(
      refused({ routes: [pass, { ...pass, host: 'other.site.test' }] }),
      /^routes\[1\]\.id: "pass"; /,
    );
    assert.match(
      refused({ routes: [pass, { ...pass, id: 'two', host: 'PASS.site.test.' }] }),
      /^routes\[1\]\.host: "PASS\.site\.test\."; a host no other route of listener "public" claims \(edge\.routes\[0\]/,
    );
    const policy = { id: 'p', route: 'web', kind: 'block-user-agent', value: 'x' };
    assert.match(refused({ routes: [web], policies: [policy, policy] }), /^policies\[1\]\.id: "p"; /);
    // The same host on two listeners, and the three kinds of host on one, are no clash.
    const two = [testListener({ id: 'public' }), testListener({ id: 'inner' })];
    validateRaw(
      edgeConfigSchema,
      {
        ...base,
        listeners: two,
        routes: [
          pass,
          { ...pass, id: 'b', listener: 'inner' },
          { ...pass, id: 'c', host: '*.site.test' },
          { ...pass, id: 'd', host: '*' },
        ],
      },
      'test',
    );
  });

  void it('the whole document names the edge key, as config validate and a reload report it', () => {
    const error = (() => {
      try {
        validateRaw(
          object({ edge: edgeConfigSchema }, 'document'),
          {
            edge: {
              ...base,
              listeners: [testListener({ id: 'public', firewall: { deny: ['10.0.0.0/33'] } })],
            },
          },
          'test',
        );
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    assert.ok(error instanceof ConfigValidationError);
    assert.deepEqual(
      error.issues.map((i) => i.path),
      ['edge.listeners[0].firewall.deny[0]'],
    );
  });

  void it('a listener whose address is taken is named by its key when the door starts', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    const tc = await startTestCore();
    try {
      const config = validateRaw(
        edgeConfigSchema,
        { enabled: true, listeners: [testListener({ id: 'spare' }), testListener({ id: 'public', port })] },
        'test',
      );
      const door = createEdgeDoor(tc.core, fixed(config));
      await door.provision(tc.core);
      const error = await door.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      await door.stop(AbortSignal.timeout(1000));
      assert.ok(error instanceof Error);
      assert.equal(
        error.message,
        `edge.listeners[1] "public" (listen 127.0.0.1:${port}): address already in use (EADDRINUSE)`,
      );
    } finally {
      await tc[Symbol.asyncDispose]();
      taken.close();
    }
  });
});
