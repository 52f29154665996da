import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigValidationError, validateRaw } from '#core/config';
import { kvConfigSchema } from './config.ts';

void describe('kv config', () => {
  void it('defaults to the embedded SQLite driver with the documented limits', () => {
    const c = validateRaw(kvConfigSchema, {}, 'test');
    assert.deepEqual(Object.keys(c.drivers), ['embedded']);
    assert.equal(c.drivers['embedded']?.type, 'sqlite');
    assert.equal(c.defaultDriver, 'embedded');
    assert.equal(c.limits.requestsPerSecond, 1000);
    assert.equal(c.limits.connectionsPerIp, 100);
    assert.equal(c.limits.namespaceBandwidth, 100_000_000);
    assert.equal(c.limits.maxValueSize, 10 * 1024 * 1024);
  });

  void it('refuses drivers without their URL and names of unknown drivers, every one at once, by key', () => {
    let issues: readonly { path: string; value: unknown; expected: string }[] = [];
    assert.throws(
      () =>
        validateRaw(
          kvConfigSchema,
          {
            drivers: {
              r: { type: 'redis', url: 'http://user:secret@127.0.0.1:6379' },
              p: { type: 'postgres' },
              n: { type: 'nats', url: 'redis://127.0.0.1:4222' },
            },
            defaultDriver: 'nope',
            namespaces: { orders: 'missing', users: 'r' },
          },
          'test',
        ),
      (e: unknown) => {
        if (!(e instanceof ConfigValidationError)) return false;
        issues = e.issues;
        return true;
      },
    );
    assert.deepEqual(issues.map((i) => i.path).toSorted(), [
      'defaultDriver',
      'drivers.n.url',
      'drivers.p.url',
      'drivers.r.url',
      'namespaces.orders',
    ]);
    // A URL's credentials never reach the message.
    assert.doesNotMatch(JSON.stringify(issues), /secret/);
    assert.match(issues.find((i) => i.path === 'defaultDriver')?.expected ?? '', /"r", "p", "n"/);
  });

  void it('names the exact key of a bad value', () => {
    const bad = (raw: Record<string, unknown>, path: string) =>
      assert.throws(
        () => validateRaw(kvConfigSchema, raw, 'test'),
        (e: unknown) => e instanceof ConfigValidationError && e.issues.some((i) => i.path === path),
      );
    bad({ drivers: { cache: { type: 'memcached' } } }, 'drivers.cache.type');
    bad({ namespaces: { Bad_Name: 'embedded' } }, 'namespaces.Bad_Name');
    bad({ limits: { maxValueSize: '1TB' } }, 'limits.maxValueSize');
    bad({ limits: { requestsPerSecond: 0 } }, 'limits.requestsPerSecond');
    bad({ listen: 'nowhere' }, 'listen');
    bad({ tls: { handshakeTimeout: 'soon' } }, 'tls.handshakeTimeout');
  });
});
