import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { comparePep440, formatPep440, normalizePypiName, parsePep440, satisfiesPep440 } from './pep440.ts';

const versionArb = fc
  .record({
    epoch: fc.constantFrom(0, 0, 0, 1),
    release: fc.array(fc.nat({ max: 12 }), { minLength: 1, maxLength: 3 }),
    pre: fc.option(fc.tuple(fc.constantFrom('a', 'b', 'rc'), fc.nat({ max: 3 })), { nil: undefined }),
    post: fc.option(fc.nat({ max: 3 }), { nil: undefined }),
    dev: fc.option(fc.nat({ max: 3 }), { nil: undefined }),
  })
  .map((r) =>
    formatPep440({
      epoch: r.epoch,
      release: r.release,
      local: [],
      ...(r.pre === undefined ? {} : { pre: r.pre as ['a' | 'b' | 'rc', number] }),
      ...(r.post === undefined ? {} : { post: r.post }),
      ...(r.dev === undefined ? {} : { dev: r.dev }),
    }),
  );

void describe('PEP 440 versions', () => {
  void it('orders the PEP 440 summary example chain', () => {
    const chain = [
      '1.0.dev456',
      '1.0a1',
      '1.0a2.dev456',
      '1.0a12.dev456',
      '1.0a12',
      '1.0b1.dev456',
      '1.0b2',
      '1.0b2.post345.dev456',
      '1.0b2.post345',
      '1.0rc1.dev456',
      '1.0rc1',
      '1.0',
      '1.0+abc.5',
      '1.0+abc.7',
      '1.0+5',
      '1.0.post456.dev34',
      '1.0.post456',
      '1.0.15',
      '1.1.dev1',
    ];
    for (let i = 1; i < chain.length; i++) {
      assert.equal(
        comparePep440(chain[i - 1] as string, chain[i] as string),
        -1,
        `${chain[i - 1]} < ${chain[i]}`,
      );
    }
  });

  void it('normalizes spellings', () => {
    assert.equal(formatPep440(parsePep440('1.0-ALPHA.1') as never), '1.0a1');
    assert.equal(formatPep440(parsePep440('v1.0-1') as never), '1.0.post1');
    assert.equal(formatPep440(parsePep440('1.0c2') as never), '1.0rc2');
    assert.equal(comparePep440('1.0', '1.0.0'), 0);
    assert.equal(parsePep440('1.0+bad!'), undefined);
    assert.equal(parsePep440('one'), undefined);
  });

  void it('is a total order that round-trips (property)', () => {
    fc.assert(
      fc.property(versionArb, versionArb, versionArb, (a, b, c) => {
        assert.equal(formatPep440(parsePep440(a) as never), a);
        assert.equal(comparePep440(a, b), -comparePep440(b, a) || 0);
        if (comparePep440(a, b) <= 0 && comparePep440(b, c) <= 0) assert.ok(comparePep440(a, c) <= 0);
      }),
    );
  });

  void it('normalizes project names per PEP 503', () => {
    assert.equal(normalizePypiName('Foo.Bar__baz-QUX'), 'foo-bar-baz-qux');
  });
});

void describe('PEP 440 specifiers', () => {
  const cases: [string, string, boolean][] = [
    ['>=1.0,<2.0', '1.5', true],
    ['>=1.0,<2.0', '2.0', false],
    ['<2.0', '2.0rc1', false],
    ['<2.0rc2', '2.0rc1', true],
    ['>1.0', '1.0.post1', false],
    ['>1.0.post1', '1.0.post2', true],
    ['~=2.2', '2.9', true],
    ['~=2.2', '3.0', false],
    ['~=1.4.5', '1.4.9', true],
    ['~=1.4.5', '1.5.0', false],
    ['==1.2.*', '1.2.7', true],
    ['==1.2.*', '1.3', false],
    ['!=1.2.*', '1.3', true],
    ['==1.0', '1.0+local', true],
    ['==1.0+local', '1.0', false],
    ['===1.0', '1.0', true],
    ['>=1.0', '2.0a1', false],
    ['>=1.0a1', '2.0a1', true],
    ['', '3.0', true],
  ];
  for (const [spec, v, expected] of cases) {
    void it(`"${v}" ${expected ? 'satisfies' : 'does not satisfy'} "${spec}"`, () => {
      assert.equal(satisfiesPep440(v, spec), expected);
    });
  }

  void it('ordered clauses agree with compare on final releases (property)', () => {
    const finals = versionArb.filter((v) => !/a|b|rc|dev/.test(v));
    fc.assert(
      fc.property(finals, finals, fc.constantFrom('<=', '>=', '=='), (a, b, op) => {
        const c = comparePep440(a, b);
        const expected = { '<=': c <= 0, '>=': c >= 0, '==': c === 0 }[op];
        assert.equal(satisfiesPep440(a, `${op}${b}`), expected);
      }),
    );
  });
});
