import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { createFirewall } from './firewall.ts';
import { backendAddressProblem, type EdgeRoute, parsePolicy, parseRoute } from './model.ts';
import { buildRouteTable } from './route-table.ts';

const route = (id: string, host: string, listener = 'main'): EdgeRoute => ({
  id,
  listener,
  host,
  mode: 'l4',
  backend: '127.0.0.1:1',
  backendProtocol: 'http1',
  backendProxyProtocol: false,
});

void describe('route table', () => {
  const table = buildRouteTable(
    [
      route('exact', 'api.example.test'),
      route('wild', '*.example.test'),
      route('any', '*'),
      route('other', 'api.example.test', 'second'),
    ],
    [{ id: 'p', route: 'exact', kind: 'block-user-agent', value: 'bot' }],
  );

  void it('keeps a terminated connection on its route only while its server name still routes there', () => {
    const l7 = (id: string, host: string): EdgeRoute => ({ ...route(id, host), mode: 'l7' });
    const before = buildRouteTable([l7('x', 'a.test'), l7('y', '*.b.test')], []);
    const onA = { routeId: 'x', listener: 'main', serverName: 'a.test' };
    const onB = { routeId: 'y', listener: 'main', serverName: 'www.b.test' };
    assert.equal(before.terminating(onA)?.route.id, 'x');
    assert.equal(before.terminating(onB)?.route.id, 'y');
    // Route x removed and added again for another host (and another backend): a connection made
    // for a.test must not send its requests there.
    const after = buildRouteTable(
      [{ ...l7('x', 'c.test'), backend: '127.0.0.2:1' }, l7('y', '*.b.test')],
      [],
    );
    assert.equal(after.terminating(onA), undefined);
    // Another backend for the same host is the same route: requests follow it.
    const moved = buildRouteTable([{ ...l7('x', 'a.test'), backend: '127.0.0.2:1' }], []);
    assert.equal(moved.terminating(onA)?.route.backend, '127.0.0.2:1');
    // A more specific route now takes the name: still the connection's route (421 tells the
    // client to reconnect for that name).
    const taken = buildRouteTable([l7('y', '*.b.test'), l7('z', 'www.b.test')], []);
    assert.equal(taken.terminating(onB)?.route.id, 'y');
    // Added again on another listener.
    assert.equal(
      buildRouteTable([{ ...l7('x', 'a.test'), listener: 'second' }], []).terminating(onA),
      undefined,
    );
    // Passthrough under the same id: gone for terminated connections.
    assert.equal(buildRouteTable([route('x', 'a.test')], []).terminating(onA), undefined);
    // Without a server name the connection went to the default route.
    const fallback = buildRouteTable([l7('d', '*')], []);
    assert.equal(
      fallback.terminating({ routeId: 'd', listener: 'main', serverName: undefined })?.route.id,
      'd',
    );
  });

  void it('matches exact (any case, trailing dot), then one-label wildcard, then the default', () => {
    assert.equal(table.match('main', 'API.Example.Test.')?.compiled.route.id, 'exact');
    assert.equal(table.match('main', 'api.example.test')?.kind, 'exact');
    assert.equal(table.match('main', 'www.example.test')?.kind, 'wildcard');
    assert.equal(table.match('main', 'a.b.example.test')?.kind, 'default', 'wildcards cover one label');
    assert.equal(table.match('main', 'example.test')?.kind, 'default');
    assert.equal(table.match('main', undefined)?.kind, 'default');
    assert.equal(table.match('second', 'api.example.test')?.compiled.route.id, 'other');
    assert.equal(table.match('second', 'www.example.test'), undefined);
    assert.equal(table.match('nope', 'api.example.test'), undefined);
    assert.deepEqual(
      table.byId('exact')?.policies.map((p) => p.id),
      ['p'],
    );
  });

  void it('refuses two routes claiming one host on one listener', () => {
    assert.throws(() => buildRouteTable([route('a', 'x.test'), route('b', 'X.test')], []), RangeError);
    assert.throws(() => buildRouteTable([route('a', '*'), route('b', '*')], []), RangeError);
    assert.doesNotThrow(() => buildRouteTable([route('a', 'x.test'), route('b', 'x.test', 'other')], []));
  });

  void it('property: a host with its own exact route always wins over wildcard and default', () => {
    const label = fc.stringMatching(/^[a-z0-9]{1,10}$/);
    fc.assert(
      fc.property(label, label, (sub, parent) => {
        const host = `${sub}.${parent}.test`;
        const t = buildRouteTable([route('w', `*.${parent}.test`), route('d', '*'), route('e', host)], []);
        assert.equal(t.match('main', host.toUpperCase())?.compiled.route.id, 'e');
        assert.equal(t.match('main', `zz${sub}.${parent}.test`)?.compiled.route.id, 'w');
      }),
    );
  });
});

void describe('route and policy documents', () => {
  void it('accepts valid documents and lists every bad field', () => {
    const ok = parseRoute({
      id: 'api',
      listener: 'main',
      host: '*.Example.test',
      backend: '[::1]:8443',
      mode: 'l4',
    });
    assert.ok(!Array.isArray(ok));
    if (!Array.isArray(ok)) assert.equal(ok.host, '*.example.test');
    const bad = parseRoute({
      id: 'API!',
      listener: '',
      host: 'a..b',
      backend: 'x:0',
      mode: 'l9',
      backendProxyProtocol: 'yes',
    });
    assert.ok(Array.isArray(bad));
    if (Array.isArray(bad)) {
      assert.deepEqual(bad.map((p) => p.field).toSorted(), [
        'backend',
        'backendProxyProtocol',
        'host',
        'id',
        'listener',
        'mode',
      ]);
    }
    const l7 = parseRoute({ id: 'a', listener: 'main', host: 'a.test', backend: 'a.test:1', mode: 'l7' });
    assert.ok(Array.isArray(l7), 'l7 without certificate is refused');
    assert.ok(Array.isArray(parsePolicy({ id: 'p', route: 'r', kind: 'block-user-agent' })));
    assert.ok(
      Array.isArray(parsePolicy({ id: 'p', route: 'r', kind: 'require-header', header: 'bad header' })),
    );
    assert.ok(!Array.isArray(parsePolicy({ id: 'p', route: 'r', kind: 'require-header', header: 'X-Team' })));
    for (const good of ['a.test:1', '10.0.0.1:65535', '[2001:db8::1]:443'])
      assert.equal(backendAddressProblem(good), undefined, good);
    for (const badAddress of ['a.test', 'a.test:0', 'a.test:65536', '[zz]:1', '2001:db8::1:443']) {
      assert.notEqual(backendAddressProblem(badAddress), undefined, badAddress);
    }
  });
});

void describe('firewall', () => {
  void it('deny wins, a non-empty allow list must match, mapped IPv6 counts as IPv4', () => {
    const fw = createFirewall({ allow: ['10.0.0.0/8', '2001:db8::/32'], deny: ['10.1.0.0/16'] });
    assert.deepEqual(fw.check('10.2.3.4'), { allowed: true });
    assert.deepEqual(fw.check('::ffff:10.2.3.4'), { allowed: true });
    assert.deepEqual(fw.check('10.1.2.3'), { allowed: false, reason: 'denied' });
    assert.deepEqual(fw.check('192.0.2.1'), { allowed: false, reason: 'not-allowed' });
    assert.deepEqual(fw.check('2001:db8::5'), { allowed: true });
    assert.deepEqual(fw.check('not an address'), { allowed: false, reason: 'not-allowed' });
    assert.deepEqual(createFirewall({ allow: [], deny: [] }).check('192.0.2.1'), { allowed: true });
    assert.throws(() => createFirewall({ allow: ['10.0.0.0/33'], deny: [] }));
  });
});
