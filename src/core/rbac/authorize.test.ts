import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { authorize } from './authorize.ts';
import { ACTIONS, type Action, type Principal, ROLES, type Role, type RoleBinding } from './model.ts';

// The expected permission matrix, written out by hand as data (1 = granted), so that the test
// does not derive its expectations from the code under test.
// biome-ignore format: the matrix is easier to review as aligned columns.
const MATRIX: Readonly<Record<Action, readonly [admin: 0 | 1, publisher: 0 | 1, consumer: 0 | 1, auditor: 0 | 1, operator: 0 | 1, reader: 0 | 1]>> = {
  //                                 adm pub con aud ope rea
  'users:read':                     [1, 0, 0, 1, 0, 0],
  'users:write':                    [1, 0, 0, 0, 0, 0],
  'keys:read':                      [1, 0, 0, 1, 0, 0],
  'keys:write':                     [1, 0, 0, 0, 0, 0],
  'roles:read':                     [1, 1, 1, 1, 1, 1],
  'bindings:write':                 [1, 0, 0, 0, 0, 0],
  'audit:read':                     [1, 0, 0, 1, 0, 0],
  'config:read':                    [1, 0, 0, 1, 0, 0],
  'config:reload':                  [1, 0, 0, 0, 0, 0],
  'health:read':                    [1, 1, 1, 1, 1, 1],
  'artifacts:list':                 [1, 1, 1, 1, 0, 0],
  'artifacts:read':                 [1, 1, 1, 1, 0, 0],
  'artifacts:download':             [1, 1, 1, 1, 0, 0],
  'artifacts:download-unapproved':  [1, 0, 0, 0, 0, 0],
  'artifacts:upload':               [1, 1, 0, 0, 0, 0],
  'artifacts:delete':               [1, 0, 0, 0, 0, 0],
  'artifacts:scan':                 [1, 0, 0, 0, 0, 0],
  'artifacts:sign':                 [1, 1, 0, 0, 0, 0],
  'artifacts:override':             [1, 0, 0, 0, 0, 0],
  'registry:pull':                  [1, 1, 1, 1, 0, 0],
  'registry:decisions:read':        [1, 0, 0, 1, 0, 0],
  'registry:policy:test':           [1, 0, 0, 0, 0, 0],
  'registry:cache:invalidate':      [1, 0, 0, 0, 0, 0],
  'kv:read':                        [1, 0, 0, 1, 1, 1],
  'kv:write':                       [1, 0, 0, 0, 1, 0],
  'kv:admin':                       [1, 0, 0, 0, 1, 0],
  'edge:read':                      [1, 0, 0, 1, 1, 1],
  'edge:write':                     [1, 0, 0, 0, 1, 0],
};

const ROLE_COLUMN: Readonly<Record<Role, number>> = {
  admin: 0,
  publisher: 1,
  consumer: 2,
  auditor: 3,
  operator: 4,
  reader: 5,
};

// Which resource namespaces a binding namespace covers, also written out as data.
const NAMESPACE_CASES: readonly {
  readonly binding: string;
  readonly resource: string | undefined;
  readonly covers: boolean;
}[] = [
  { binding: 'a', resource: 'a', covers: true },
  { binding: 'a', resource: 'b', covers: false },
  { binding: 'a', resource: 'ab', covers: false },
  { binding: 'a', resource: 'A', covers: false },
  { binding: 'a', resource: undefined, covers: false },
  { binding: 'a', resource: '*', covers: false },
  { binding: '*', resource: 'a', covers: true },
  { binding: '*', resource: 'b', covers: true },
  { binding: '*', resource: undefined, covers: true },
  { binding: '*', resource: '*', covers: true },
];

function principal(bindings: readonly RoleBinding[], name = 'alice'): Principal {
  return { id: `user:${name}`, kind: 'user', name, bindings };
}

void describe('authorize', () => {
  void it('has an expected row for every action and nothing else', () => {
    assert.deepEqual(Object.keys(MATRIX).toSorted(), [...ACTIONS].toSorted());
    assert.deepEqual(Object.keys(ROLE_COLUMN).toSorted(), [...ROLES].toSorted());
  });

  void it('matches the matrix for every role × action × namespace case', () => {
    let checked = 0;
    for (const role of ROLES) {
      for (const action of ACTIONS) {
        for (const c of NAMESPACE_CASES) {
          const granted = MATRIX[action][ROLE_COLUMN[role]] === 1;
          const expected = granted && c.covers;
          const resource = { type: 'thing', ...(c.resource === undefined ? {} : { namespace: c.resource }) };
          const decision = authorize(principal([{ role, namespace: c.binding }]), action, resource);
          assert.equal(
            decision.allowed,
            expected,
            `${role} bound to "${c.binding}" doing ${action} on ${String(c.resource)}: ${decision.reason}`,
          );
          if (expected) assert.deepEqual(decision.binding, { role, namespace: c.binding });
          else assert.equal(decision.binding, undefined);
          checked++;
        }
      }
    }
    assert.equal(checked, ROLES.length * ACTIONS.length * NAMESPACE_CASES.length);
  });

  void it('denies a principal without bindings everything', () => {
    for (const action of ACTIONS) {
      const decision = authorize(principal([]), action, { type: 'x', namespace: 'a' });
      assert.equal(decision.allowed, false);
      assert.match(decision.reason, /No role binding of "alice" grants/);
    }
  });

  void it('explains which binding allowed an action', () => {
    const decision = authorize(principal([{ role: 'publisher', namespace: 'team-a' }]), 'artifacts:upload', {
      type: 'artifact',
      namespace: 'team-a',
    });
    assert.equal(decision.reason, 'Role "publisher" in namespace "team-a" grants "artifacts:upload"');
  });

  void it('prefers a namespace binding over a wildcard one as the reason', () => {
    const p = principal([
      { role: 'reader', namespace: '*' },
      { role: 'operator', namespace: 'orders' },
    ]);
    const decision = authorize(p, 'kv:read', { type: 'kv', namespace: 'orders' });
    assert.deepEqual(decision.binding, { role: 'operator', namespace: 'orders' });
  });

  void describe('role escalation', () => {
    const publisherEverywhere = principal([{ role: 'publisher', namespace: '*' }]);
    void it('a publisher cannot create users, keys for others or bind roles', () => {
      for (const action of ['users:write', 'bindings:write', 'keys:write', 'config:reload'] as const) {
        assert.equal(authorize(publisherEverywhere, action, { type: 'user' }).allowed, false, action);
        assert.equal(authorize(publisherEverywhere, action, { type: 'user', namespace: '*' }).allowed, false);
      }
    });
    void it('an admin of one namespace cannot administer the gateway', () => {
      const p = principal([{ role: 'admin', namespace: 'a' }]);
      for (const action of ['users:write', 'bindings:write', 'audit:read', 'config:reload'] as const) {
        assert.equal(authorize(p, action, { type: 'user' }).allowed, false, action);
      }
      assert.equal(authorize(p, 'artifacts:delete', { type: 'artifact', namespace: 'a' }).allowed, true);
      assert.equal(authorize(p, 'artifacts:delete', { type: 'artifact', namespace: 'b' }).allowed, false);
    });
    void it('an auditor cannot write or download unapproved content anywhere', () => {
      const p = principal([{ role: 'auditor', namespace: '*' }]);
      for (const action of ACTIONS.filter((a) =>
        /write|upload|delete|sign|override|admin|reload|invalidate|unapproved|scan|test/.test(a),
      )) {
        assert.equal(authorize(p, action, { type: 'x', namespace: 'a' }).allowed, false, action);
      }
    });
    void it('a binding for namespace "a" never grants namespace "b" (property)', () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...ROLES),
          fc.constantFrom(...ACTIONS),
          fc.string({ minLength: 1, maxLength: 8 }).filter((s) => s !== '*'),
          fc.string({ minLength: 1, maxLength: 8 }),
          (role, action, bound, asked) => {
            fc.pre(bound !== asked);
            const d = authorize(principal([{ role, namespace: bound }]), action, {
              type: 'x',
              namespace: asked,
            });
            return !d.allowed;
          },
        ),
      );
    });
  });
});
