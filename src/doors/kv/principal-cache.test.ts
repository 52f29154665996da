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
});
