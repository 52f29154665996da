/**
 * The door's Maven version order against Maven's own: maven-artifact's ComparableVersion (the jar
 * of the installed `mvn`) compares hundreds of generated versions pairwise through its `main`, and
 * every answer must match `compareMaven`. No network; the JVM is the one `mvn` runs on.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { compareMaven } from '#core/vulndb';

const run = promisify(execFile);
const MAVEN_LIB = '/usr/share/maven/lib';

const TOKENS =
  '0 1 2 10 007 alpha beta a b m rc cr snapshot SNAPSHOT ga final release sp xyz jre M1 RC2 a1 b2 SP1 x1'.split(
    ' ',
  );
const token = fc.constantFrom('', ...TOKENS);
const versionArb = fc
  .tuple(fc.nat({ max: 3 }), fc.array(fc.tuple(fc.constantFrom('.', '-', ''), token), { maxLength: 5 }))
  .map(([first, rest]) => `${first}${rest.map(([s, t]) => `${s}${t}`).join('')}`);

async function mavenComparisons(versions: readonly string[]): Promise<[string, string, number][]> {
  const jar = (await readdir(MAVEN_LIB)).find((f) => /^maven-artifact.*\.jar$/.test(f));
  assert.ok(jar !== undefined, `no maven-artifact jar in ${MAVEN_LIB} (is mvn installed?)`);
  const { stdout } = await run(
    'java',
    ['-cp', join(MAVEN_LIB, jar), 'org.apache.maven.artifact.versioning.ComparableVersion', ...versions],
    { maxBuffer: 1 << 26, timeout: 60_000 },
  );
  // ComparableVersion.main prints "   <a> <op> <b>" for each consecutive pair.
  return stdout
    .split('\n')
    .map((line) => /^ {3}(\S+) (<|>|==) (\S+)$/.exec(line))
    .filter((m) => m !== null)
    .map((m) => [m[1] as string, m[3] as string, m[2] === '<' ? -1 : m[2] === '>' ? 1 : 0]);
}

void describe('Maven version order against maven-artifact', () => {
  void it('agrees with ComparableVersion on generated versions', async () => {
    for (const seed of [1, 2, 3]) {
      const versions = fc.sample(versionArb, { numRuns: 800, seed }).filter((v) => !/\s/.test(v));
      const pairs = await mavenComparisons(versions);
      assert.ok(
        pairs.length >= versions.length - 1,
        `${pairs.length} comparisons for ${versions.length} versions`,
      );
      const wrong = pairs.filter(([a, b, want]) => compareMaven(a, b) !== want);
      assert.deepEqual(wrong.slice(0, 10), [], `seed ${seed}: ${wrong.length} of ${pairs.length} disagree`);
    }
  });
});
