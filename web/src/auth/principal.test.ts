import { describe, expect, it } from 'vitest';
import { token } from '../test/fake-server.ts';
import { can, meFromToken, parseBindings } from './principal.ts';

describe('principal', () => {
  it('reads the bindings Gatehouse access tokens carry', () => {
    const me = meFromToken(
      token({ sub: 'u1', name: 'carol', bindings: [{ role: 'consumer', ns: 'team-a' }] }),
    );
    expect(me).toEqual({
      id: 'user:u1',
      name: 'carol',
      bindings: [{ role: 'consumer', namespace: 'team-a' }],
    });
    expect(can(me, 'artifacts:download')).toBe(true);
    for (const action of [
      'users:read',
      'audit:read',
      'keys:write',
      'artifacts:override',
      'bindings:write',
      'edge:write',
    ] as const)
      expect(can(me, action), action).toBe(false);
  });

  it('drops unknown roles and malformed entries, so nothing widens access', () => {
    expect(
      parseBindings([{ role: 'root', ns: '*' }, 'superuser:*', 42, null, { role: 'auditor' }, 'admin']),
    ).toEqual([
      { role: 'auditor', namespace: '*' },
      { role: 'admin', namespace: '*' },
    ]);
    expect(parseBindings('admin:*')).toEqual([]);
    expect(meFromToken('not-a-jwt')).toBeUndefined();
    expect(meFromToken('a.@@@.c')).toBeUndefined();
    expect(can(undefined, 'health:read')).toBe(false);
  });
});
