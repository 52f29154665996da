import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Principal } from '#core/rbac';
import { restrictRoles } from './service.ts';

const alice: Principal = {
  id: 'user:alice',
  kind: 'user',
  name: 'alice',
  bindings: [
    { role: 'admin', namespace: '*' },
    { role: 'reader', namespace: 'orders' },
  ],
};

describe('per-role CIDR allow-lists', () => {
  it('keeps every binding when no list names its role', () => {
    const out = restrictRoles(alice, '203.0.113.9', { operator: ['10.0.0.0/8'] });
    assert.equal(out.principal, alice);
    assert.deepEqual(out.dropped, []);
  });

  it('drops only the bindings whose role is not allowed from the address', () => {
    const out = restrictRoles(alice, '203.0.113.9', { admin: ['10.0.0.0/8', '::1'] });
    assert.deepEqual(out.principal.bindings, [{ role: 'reader', namespace: 'orders' }]);
    assert.deepEqual(out.dropped, ['admin']);
  });

  it('keeps a role used from inside its list, for IPv4, IPv6 and IPv4-mapped addresses', () => {
    for (const ip of ['10.1.2.3', '::ffff:10.1.2.3']) {
      assert.deepEqual(restrictRoles(alice, ip, { admin: ['10.0.0.0/8'] }).dropped, [], ip);
    }
    assert.deepEqual(restrictRoles(alice, '2001:db8::5', { admin: ['2001:db8::/32'] }).dropped, []);
  });

  it('refuses a role from an address that is not an IP at all', () => {
    assert.deepEqual(restrictRoles(alice, 'not-an-ip', { admin: ['0.0.0.0/0'] }).dropped, ['admin']);
  });
});
