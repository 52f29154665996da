import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { App, ConfigSection } from '#core/app';
import { edgePoliciesCommands } from '../../../src/cli/edge-policies.ts';
import { listenersCommands } from '../../../src/cli/listeners.ts';
import { routesCommands } from '../../../src/cli/routes.ts';
import { validateRaw } from '#core/config';
import { runCliCaptured } from '#testing/cli-run';
import { type EdgeConfig, createEdgeDoor, edgeConfigSchema } from '../../../src/doors/edge/index.ts';
import { EdgeService } from '../../../src/doors/edge/service.ts';
import { EdgeStore } from '../../../src/doors/edge/store.ts';
import { startEchoBackend } from './backends.ts';
import { createTestPki, type Leaf, type TestPki } from './certs.ts';
import { startTestCore, type TestCore } from './core.ts';
import { testListener } from './harness.ts';
import { type Backend, curl, startHttpsBackend } from './peers.ts';

/** A config section whose value tests replace, as a reload would. */
function section(value: EdgeConfig): ConfigSection<EdgeConfig> & { set(next: EdgeConfig): void } {
  let current = value;
  const listeners = new Set<(next: EdgeConfig, previous: EdgeConfig) => void>();
  return {
    current: () => current,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(next) {
      const previous = current;
      current = next;
      for (const l of listeners) l(next, previous);
    },
  };
}

void describe('edge admin API and runtime changes', () => {
  let pki: TestPki;
  let leaf: Leaf;
  let tc: TestCore;
  let door: App;
  let tls: Backend;
  let echo: Backend;
  let edgePort = 0;
  let configSection: ReturnType<typeof section>;
  const tokens: Record<string, string> = {};

  before(async () => {
    pki = await createTestPki();
    leaf = await pki.issue('site', ['*.site.test']);
    tls = await startHttpsBackend(await pki.issue('l4', ['l4.site.test', 'moved.site.test']), 'l4-backend');
    echo = await startEchoBackend('http1');
    tc = await startTestCore();
    const config = validateRaw(
      edgeConfigSchema,
      {
        enabled: true,
        listeners: [testListener({ id: 'public', idleTimeout: '10s' })],
        routes: [{ id: 'seeded', listener: 'public', host: 'l4.site.test', backend: tls.address }],
      },
      'test',
    );
    configSection = section(config);
    door = createEdgeDoor(tc.core, configSection);
    await door.provision(tc.core);
    await door.validate();
    await door.start();
    await tc.listen();
    const listeners = await fetch(`${tc.url}/api/edge/listeners`, {
      headers: { authorization: `Bearer ${(tokens['admin'] = await tc.tokenFor('admin'))}` },
    });
    edgePort = ((await listeners.json()) as { listeners: { port: number }[] }).listeners[0]?.port ?? 0;
    for (const role of ['operator', 'reader', 'consumer'] as const) tokens[role] = await tc.tokenFor(role);
  });

  after(async () => {
    await door.stop(AbortSignal.timeout(1000));
    await tc[Symbol.asyncDispose]();
    await tls[Symbol.asyncDispose]();
    await echo[Symbol.asyncDispose]();
    await pki[Symbol.asyncDispose]();
  });

  const api = (method: string, path: string, role: string | undefined, body?: unknown) =>
    tc.api(method, path, role === undefined ? undefined : (tokens[role] ?? ''), body);

  void it('refuses anonymous callers and roles without edge permissions', async () => {
    assert.equal((await api('GET', '/api/edge/routes', undefined)).status, 401);
    assert.equal((await api('GET', '/api/edge/routes', 'consumer')).status, 403);
    assert.equal((await api('GET', '/api/edge/routes', 'reader')).status, 200);
    const route = { id: 'x', listener: 'public', host: 'x.site.test', backend: echo.address };
    const denied = await api('POST', '/api/edge/routes', 'reader', route);
    assert.equal(denied.status, 403);
    assert.equal(denied.json['code'], 'GW_ERR_RBAC_DENIED');
    assert.equal((await api('DELETE', '/api/edge/routes/seeded', 'consumer')).status, 403);
    assert.equal(
      (await api('PATCH', '/api/edge/listeners/public', 'reader', { maxConnections: 5 })).status,
      403,
    );
    assert.equal((await api('POST', '/api/edge/policies', undefined, {})).status, 401);
  });

  void it('serves the seeded route and validates route documents', async () => {
    assert.equal((await curl('l4.site.test', edgePort, pki.caFile)).stdout, 'l4-backend');
    const bad = await api('POST', '/api/edge/routes', 'operator', {
      id: 'Bad Id',
      listener: 'nope',
      host: 'a b',
      backend: 'x',
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.json['code'], 'GW_ERR_EDGE_ROUTE_INVALID');
    // Problem documents carry `details` at the top level (RFC 9457 extension members).
    const fields = (bad.json['errors'] as { field: string }[]).map((f) => f.field);
    assert.deepEqual(fields.toSorted(), ['backend', 'host', 'id']);
    const unknownListener = await api('POST', '/api/edge/routes', 'operator', {
      id: 'y',
      listener: 'nope',
      host: 'y.site.test',
      backend: echo.address,
    });
    assert.equal(unknownListener.status, 400);
    const clash = await api('POST', '/api/edge/routes', 'operator', {
      id: 'clash',
      listener: 'public',
      host: 'L4.site.test',
      backend: echo.address,
    });
    assert.equal(clash.status, 409);
    assert.equal(clash.json['code'], 'GW_ERR_EDGE_ROUTE_EXISTS');
  });

  void it('adds and removes routes and policies at run time without dropping open connections', async () => {
    // A long-lived passthrough connection opened before every change below.
    const held: TLSSocket = await new Promise((resolve, reject) => {
      const s = tlsConnect(
        { host: '127.0.0.1', port: edgePort, servername: 'l4.site.test', ca: pki.ca },
        () => resolve(s),
      );
      s.on('error', reject);
    });
    const l7 = {
      id: 'app',
      listener: 'public',
      host: 'app.site.test',
      mode: 'l7',
      backend: echo.address,
      backendProtocol: 'http1',
      certFile: leaf.certFile,
      keyFile: leaf.keyFile,
    };
    assert.equal((await api('POST', '/api/edge/routes', 'operator', l7)).status, 201);
    const served = await curl('app.site.test', edgePort, pki.caFile);
    assert.equal((JSON.parse(served.stdout) as { xff: string }).xff, '127.0.0.1');

    const policy = { id: 'no-curl', route: 'app', kind: 'block-user-agent', value: 'curl/' };
    assert.equal((await api('POST', '/api/edge/policies', 'operator', policy)).status, 201);
    assert.equal((await api('POST', '/api/edge/policies', 'operator', policy)).status, 409);
    assert.match((await curl('app.site.test', edgePort, pki.caFile, ['-i'])).stdout, /^HTTP\/2 403/);
    const listed = await api('GET', '/api/edge/policies', 'reader');
    assert.deepEqual(
      (listed.json['policies'] as { id: string }[]).map((p) => p.id),
      ['no-curl'],
    );
    assert.equal((await api('DELETE', '/api/edge/policies/no-curl', 'operator')).status, 204);
    assert.equal((await api('DELETE', '/api/edge/policies/no-curl', 'operator')).status, 404);
    assert.match((await curl('app.site.test', edgePort, pki.caFile, ['-i'])).stdout, /^HTTP\/2 200/);

    assert.equal((await api('DELETE', '/api/edge/routes/seeded', 'admin')).status, 204);
    assert.equal((await api('DELETE', '/api/edge/routes/seeded', 'admin')).status, 404);
    assert.notEqual(
      (await curl('l4.site.test', edgePort, pki.caFile)).code,
      0,
      'new connections find no route',
    );

    // The connection opened before the changes still talks to its backend.
    held.write('GET / HTTP/1.1\r\nHost: l4.site.test\r\nConnection: close\r\n\r\n');
    const reply = await new Promise<string>((resolve) => {
      let text = '';
      held.on('data', (c: Buffer) => {
        text += c.toString();
      });
      held.on('end', () => resolve(text));
    });
    assert.match(reply, /l4-backend$/);

    const audit = await tc.core.audit.query({ action: 'edge.route.delete' });
    assert.equal(audit.events[0]?.resource, 'route:seeded');
    assert.match(audit.events[0]?.actor ?? '', /^user:/);
  });

  void it('changes a listener connection limit at run time', async () => {
    const bad = await api('PATCH', '/api/edge/listeners/public', 'operator', { maxConnections: 0 });
    assert.equal(bad.status, 400);
    assert.equal(bad.json['code'], 'GW_ERR_EDGE_LISTENER_LIMIT_INVALID');
    assert.equal(
      (await api('PATCH', '/api/edge/listeners/nope', 'operator', { maxConnections: 3 })).status,
      404,
    );
    const ok = await api('PATCH', '/api/edge/listeners/public', 'operator', { maxConnections: 3 });
    assert.equal(ok.status, 200);
    assert.equal(ok.json['maxConnections'], 3);
    assert.equal((await api('GET', '/api/edge/listeners/public', 'reader')).json['maxConnections'], 3);
  });

  void it('CLI: routes, policies and listeners commands drive the same API', async () => {
    const commands = [...routesCommands, ...edgePoliciesCommands, ...listenersCommands];
    const gatehouse = (role: string, ...argv: string[]) =>
      runCliCaptured([...argv, '--server', tc.url, '--token', tokens[role] ?? ''], commands);
    const limit = await gatehouse('operator', 'listeners', 'set-max-connections', 'public', '50', '--json');
    assert.equal(limit.code, 0, limit.err);
    assert.equal((JSON.parse(limit.out) as { maxConnections: number }).maxConnections, 50);
    const add = await gatehouse(
      'operator',
      'routes',
      'add',
      'cli',
      '--listener',
      'public',
      '--host',
      'moved.site.test',
      '--backend',
      tls.address,
    );
    assert.equal(add.code, 0, add.err);
    const moved = await curl('moved.site.test', edgePort, pki.caFile);
    assert.equal(moved.stdout, 'l4-backend', moved.stderr);
    const list = await gatehouse('reader', 'routes', 'list', '--json');
    assert.ok((JSON.parse(list.out) as { id: string }[]).some((r) => r.id === 'cli'));
    const denied = await gatehouse('reader', 'routes', 'remove', 'cli');
    // A 403 exits 10 (a 401 would be 3); the message names the RBAC code.
    assert.equal(denied.code, 10, denied.err);
    assert.match(denied.err, /GW_ERR_RBAC_DENIED/);
    const policy = await gatehouse(
      'operator',
      'policies',
      'add',
      'team',
      '--route',
      'app',
      '--require-header',
      'x-team',
      '--value',
      'edge',
    );
    assert.equal(policy.code, 0, policy.err);
    assert.match((await curl('app.site.test', edgePort, pki.caFile, ['-i'])).stdout, /^HTTP\/2 403/);
    assert.match(
      (await curl('app.site.test', edgePort, pki.caFile, ['-i', '-H', 'x-team: edge'])).stdout,
      /^HTTP\/2 200/,
    );
    assert.match(
      (await gatehouse('reader', 'policies', 'list')).out,
      /team\s+app\s+require-header\s+x-team\s+edge/,
    );
    assert.equal((await gatehouse('operator', 'policies', 'add', 'bad', '--route', 'app')).code, 2);
    assert.equal((await gatehouse('operator', 'policies', 'remove', 'team')).code, 0);
    assert.equal((await gatehouse('operator', 'listeners', 'set-max-connections', 'public', 'many')).code, 2);
    assert.equal((await gatehouse('operator', 'routes', 'remove', 'cli')).code, 0);
    assert.notEqual((await curl('moved.site.test', edgePort, pki.caFile)).code, 0);
  });

  void it('reloads firewall rules from a new configuration and keeps the old ones when invalid', async () => {
    const current = configSection.current();
    const withFirewall = (deny: readonly string[]) => ({
      ...current,
      listeners: current.listeners.map((l) => ({ ...l, firewall: { allow: [], deny } })),
    });
    configSection.set(withFirewall(['127.0.0.0/8']));
    const blocked = await curl('app.site.test', edgePort, pki.caFile);
    assert.notEqual(blocked.code, 0);
    configSection.set(withFirewall(['not-a-cidr']));
    assert.notEqual(
      (await curl('app.site.test', edgePort, pki.caFile)).code,
      0,
      'invalid rules keep the last good ones',
    );
    configSection.set(withFirewall([]));
    assert.equal((await curl('app.site.test', edgePort, pki.caFile)).code, 0);
  });

  void it('a second replica on the same database picks up API changes at its next poll', async () => {
    const config = validateRaw(
      edgeConfigSchema,
      { enabled: true, listeners: [testListener({ id: 'public' })], pollInterval: '1h' },
      'test',
    );
    const core = tc.core;
    const replica = new EdgeService(
      {
        log: core.log,
        metrics: core.metrics,
        audit: core.audit,
        limiters: core.limiters,
        store: new EdgeStore(core.db),
      },
      config,
    );
    await replica.start();
    try {
      const port = replica.listener('public')?.port ?? 0;
      assert.notEqual((await curl('replica.site.test', port, pki.caFile)).code, 0);
      const added = await api('POST', '/api/edge/routes', 'operator', {
        id: 'replicated',
        listener: 'public',
        host: 'replica.site.test',
        backend: tls.address,
      });
      assert.equal(added.status, 201);
      // The poll timer is an hour away; run one poll tick now instead of waiting for it.
      await replica.refresh();
      const served = await curl('replica.site.test', port, pki.caFile, ['-k']);
      assert.equal(served.stdout, 'l4-backend', served.stderr);
    } finally {
      await replica.stop(AbortSignal.timeout(1000));
    }
  });
});
