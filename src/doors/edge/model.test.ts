import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  backendAddressProblem,
  type EdgeRoute,
  normalizeRouteHost,
  parseRoute,
  policyRouteProblem,
} from './model.ts';

const route = (id: string, mode: 'l4' | 'l7'): EdgeRoute => ({
  id,
  listener: 'main',
  host: `${id}.test`,
  mode,
  backend: '127.0.0.1:1',
  backendProtocol: 'http1',
  backendProxyProtocol: false,
});

void describe('edge model validation', () => {
  void it('route hosts: SNI length and label rules, one leading "*." wildcard, lower-cased without a trailing dot', () => {
    assert.deepEqual(normalizeRouteHost('*'), { host: '*' });
    assert.deepEqual(normalizeRouteHost('API.Example.test.'), { host: 'api.example.test' });
    assert.deepEqual(normalizeRouteHost('*.Example.test'), { host: '*.example.test' });
    assert.deepEqual(normalizeRouteHost('_acme.a-b.test'), { host: '_acme.a-b.test' });
    const max = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    assert.deepEqual(normalizeRouteHost(max), { host: max });
    assert.deepEqual(normalizeRouteHost(`*.${max.slice(2)}`), { host: `*.${max.slice(2)}` });
    for (const bad of [
      'x'.repeat(609),
      `${max}e`,
      `*.${max}`,
      `${'a'.repeat(64)}.test`,
      '',
      'a..b',
      '.a',
      'a.test..',
      '-a.test',
      'a-.test',
      'a b',
      'a:1',
      '*.*.a',
      'a.*.test',
      'a*.test',
      '**',
    ]) {
      assert.ok('expected' in normalizeRouteHost(bad), bad.slice(0, 40));
    }
  });

  void it('backends: a DNS name, IPv4 or bracketed IPv6 host and a port from 1 to 65535', () => {
    for (const good of [
      'a.test:1',
      '10.0.0.1:65535',
      '[2001:db8::1]:443',
      '[::1]:8080',
      'db_1:5432',
      'a.test.:80',
    ]) {
      assert.equal(backendAddressProblem(good), undefined, good);
    }
    for (const bad of [
      '-:80',
      ':80',
      'a.test',
      'a.test:',
      'a.test:0',
      'a.test:65536',
      'a.test:123456',
      'a.test:-1',
      '[zz]:1',
      '[10.0.0.1]:1',
      '2001:db8::1:443',
      '999.1.1.1:80',
      '1.2.3:80',
      'a..b:80',
      `${'a'.repeat(64)}:80`,
      `${'a.'.repeat(127)}b:80`,
      'a b:80',
    ]) {
      assert.notEqual(backendAddressProblem(bad), undefined, bad.slice(0, 40));
    }
  });

  void it('an L4 route refuses the L7 fields, naming each; an L7 route takes them', () => {
    const base = { id: 'r', listener: 'main', host: 'r.test', backend: 'a.test:1' };
    const bad = parseRoute({
      ...base,
      backendProtocol: 'h2',
      certFile: '/c.pem',
      keyFile: '/k.pem',
      backendCaFile: '/ca.pem',
      backendProxyProtocol: true,
    });
    assert.ok(Array.isArray(bad));
    assert.deepEqual(bad.map((p) => p.field).toSorted(), [
      'backendCaFile',
      'backendProtocol',
      'certFile',
      'keyFile',
    ]);
    const l4 = parseRoute({ ...base, backendProxyProtocol: true, certFile: null });
    assert.ok(!Array.isArray(l4));
    assert.equal(l4.mode, 'l4');
    const l7 = parseRoute({
      ...base,
      mode: 'l7',
      backendProtocol: 'h2',
      certFile: '/c.pem',
      keyFile: '/k.pem',
      backendCaFile: '/ca.pem',
    });
    assert.ok(!Array.isArray(l7));
    assert.equal(l7.backendCaFile, '/ca.pem');
    const host = parseRoute({ ...base, host: 'x'.repeat(609), backend: '-:80' });
    assert.ok(Array.isArray(host));
    assert.deepEqual(host.map((p) => p.field).toSorted(), ['backend', 'host']);
  });

  void it('policies need an existing L7 route, for the API and the configuration seed alike', () => {
    assert.equal(policyRouteProblem({ route: 'web' }, route('web', 'l7')), undefined);
    assert.equal(policyRouteProblem({ route: 'tcp' }, route('tcp', 'l4'))?.field, 'route');
    assert.match(policyRouteProblem({ route: 'tcp' }, route('tcp', 'l4'))?.expected ?? '', /l7 route/);
    assert.equal(policyRouteProblem({ route: 'gone' }, undefined)?.field, 'route');
  });
});
