import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Principal } from '#core/rbac';
import { createPrincipalCache } from './principal-cache.ts';

const principal = (id: string, expiresAt?: number): Principal => ({
  id,
  kind: 'token',
  name: id,
  bindings: [{ role: 'reader', namespace: 'orders' }],
  ...(expiresAt === undefined ? {} : { expiresAt }),
});

void describe('kv principal cache', () => {
  void it('reuses an authentication only for the same credentials and address, within the TTL', () => {
    let now = 1000;
    const cache = createPrincipalCache({ ttlMs: 500, maxEntries: 10, now: () => now });
    const creds = { bearer: 't1', clientIp: '10.0.0.1' };
    cache.set(creds, principal('a'));
    assert.equal(cache.get(creds)?.id, 'a');
    assert.equal(cache.get({ bearer: 't1', clientIp: '10.0.0.2' }), undefined, 'another address');
    assert.equal(cache.get({ bearer: 't2', clientIp: '10.0.0.1' }), undefined, 'another token');
    assert.equal(cache.get({ apiKey: 't1', clientIp: '10.0.0.1' }), undefined, 'same text as an API key');
    now += 500;
    assert.equal(cache.get(creds), undefined, 'expired with the TTL');
  });

  void it('never outlives the credential and stays bounded', () => {
    let now = 1000;
    const cache = createPrincipalCache({ ttlMs: 10_000, maxEntries: 2, now: () => now });
    cache.set({ bearer: 'short' }, principal('s', 1100));
    now = 1100;
    assert.equal(cache.get({ bearer: 'short' }), undefined);
    cache.set({ bearer: 'gone' }, principal('g', 900));
    assert.equal(cache.get({ bearer: 'gone' }), undefined, 'an already expired credential is not stored');
    cache.set({ bearer: 'a' }, principal('a'));
    cache.set({ bearer: 'b' }, principal('b'));
    cache.set({ bearer: 'c' }, principal('c'));
    assert.ok(cache.size() <= 2);
    assert.equal(cache.get({ bearer: 'c' })?.id, 'c');
  });

  void it('is off with a zero TTL', () => {
    const cache = createPrincipalCache({ ttlMs: 0, maxEntries: 10, now: () => 0 });
    cache.set({ bearer: 'x' }, principal('x'));
    assert.equal(cache.get({ bearer: 'x' }), undefined);
  });

  void it('shares one authentication among concurrent misses of the same credentials, and caches no failure', async () => {
    const cache = createPrincipalCache({ ttlMs: 1000, maxEntries: 10, now: () => 0 });
    let calls = 0;
    let release: (p: Principal) => void = () => undefined;
    const slow = () => {
      calls += 1;
      return new Promise<Principal>((resolve) => {
        release = resolve;
      });
    };
    const creds = { bearer: 't', clientIp: '10.0.0.1' };
    const waiting = Array.from({ length: 10 }, () => cache.load({ ...creds }, slow));
    const other = cache.load({ bearer: 't', clientIp: '10.0.0.2' }, async () => principal('other'));
    assert.equal(calls, 1, 'one authentication for ten calls');
    release(principal('a'));
    assert.deepEqual(
      (await Promise.all(waiting)).map((p) => p.id),
      Array.from({ length: 10 }, () => 'a'),
    );
    assert.equal((await other).id, 'other', 'another address authenticates on its own');
    assert.equal((await cache.load(creds, slow)).id, 'a', 'then served from the cache');
    assert.equal(calls, 1);

    let failures = 0;
    const failing = async (): Promise<Principal> => {
      failures += 1;
      throw new Error('bad token');
    };
    const bad = { bearer: 'bad', clientIp: '10.0.0.1' };
    const both = await Promise.allSettled([cache.load(bad, failing), cache.load(bad, failing)]);
    assert.deepEqual(
      both.map((r) => r.status),
      ['rejected', 'rejected'],
    );
    assert.equal(failures, 1, 'concurrent calls share the failed attempt');
    await assert.rejects(cache.load(bad, failing));
    assert.equal(failures, 2, 'a failure is not cached');
  });

  void it('authenticates every call with a zero TTL, even concurrent ones', async () => {
    const cache = createPrincipalCache({ ttlMs: 0, maxEntries: 10, now: () => 0 });
    let calls = 0;
    const load = async () => {
      calls += 1;
      return principal('x');
    };
    await Promise.all([cache.load({ bearer: 'x' }, load), cache.load({ bearer: 'x' }, load)]);
    assert.equal(calls, 2);
  });

  void it('answers a connection from its last hit only for the same header values, entry and time', async () => {
    let now = 1000;
    const cache = createPrincipalCache({ ttlMs: 500, maxEntries: 2, now: () => now });
    const conn = { clientIp: '10.0.0.1' };
    const creds = { bearer: 't1', clientIp: '10.0.0.1' };
    const via = { connection: conn, authorization: 'Bearer t1', apiKey: '' };
    assert.equal(cache.recent(conn, 'Bearer t1', ''), undefined, 'nothing before a hit');
    cache.set(creds, principal('a'));
    assert.equal(
      cache.recent(conn, 'Bearer t1', ''),
      undefined,
      'a set alone is not a hit of the connection',
    );
    assert.equal(cache.get(creds, via)?.id, 'a');
    assert.equal(cache.recent(conn, 'Bearer t1', '')?.id, 'a');
    assert.equal(cache.recent(conn, 'Bearer t2', ''), undefined, 'another token on the connection');
    assert.equal(cache.recent(conn, 'Bearer t1', 'gh_key'), undefined, 'an API key next to it');
    assert.equal(cache.recent({ clientIp: '10.0.0.1' }, 'Bearer t1', ''), undefined, 'another connection');
    now += 500;
    assert.equal(cache.recent(conn, 'Bearer t1', ''), undefined, 'expired with the TTL');
    assert.equal(cache.get(creds, via), undefined);

    // An entry pushed out of the bounded cache is not served from the connection's memory.
    now = 2000;
    cache.set(creds, principal('b'));
    assert.equal(cache.get(creds, via)?.id, 'b');
    cache.set({ bearer: 'x', clientIp: '10.0.0.9' }, principal('x'));
    cache.set({ bearer: 'y', clientIp: '10.0.0.9' }, principal('y'));
    assert.equal(cache.get(creds), undefined, 'evicted');
    assert.equal(cache.recent(conn, 'Bearer t1', ''), undefined, 'evicted, so not recent either');

    // A replaced entry (a new authentication of the same credentials) is not the remembered one.
    cache.set(creds, principal('c'));
    assert.equal(cache.recent(conn, 'Bearer t1', ''), undefined);
    assert.equal((await cache.load(creds, async () => principal('d'), via)).id, 'c');
    assert.equal(cache.recent(conn, 'Bearer t1', '')?.id, 'c');

    // After an authentication that `load` ran, the connection is answered from memory.
    const other = { clientIp: '10.0.0.2' };
    const otherVia = { connection: other, authorization: 'Bearer t3', apiKey: '' };
    const loaded = await cache.load(
      { bearer: 't3', clientIp: '10.0.0.2' },
      async () => principal('e'),
      otherVia,
    );
    assert.equal(loaded.id, 'e');
    assert.equal(cache.recent(other, 'Bearer t3', '')?.id, 'e');
  });

  void it('remembers nothing for a connection with a zero TTL', async () => {
    const cache = createPrincipalCache({ ttlMs: 0, maxEntries: 10, now: () => 0 });
    const conn = {};
    await cache.load({ bearer: 'x' }, async () => principal('x'), {
      connection: conn,
      authorization: 'Bearer x',
      apiKey: '',
    });
    assert.equal(cache.recent(conn, 'Bearer x', ''), undefined);
  });
});
