import assert from 'node:assert/strict';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { withTempDir } from '#testing/temp-dir';
import { serialRuns, watchFiles } from './watch.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Counts onChange calls of a watch on `files`. `changed` waits (bounded) for at least one call
 * more than `since`, then for the count to rest (one write can be two events far apart on a
 * loaded machine, and so two calls), and returns the count.
 */
function counting(files: readonly string[]) {
  let calls = 0;
  const watch = watchFiles(
    () => {
      calls += 1;
    },
    { debounceMs: 20 },
  );
  for (const file of files) watch.add(file);
  return {
    watch,
    calls: () => calls,
    async changed(since: number): Promise<number> {
      const until = Date.now() + 5000;
      while (Date.now() < until) {
        if (calls > since) break;
        await sleep(10);
      }
      assert.ok(calls > since, `no change seen after ${since} calls`);
      let last = -1;
      while (last !== calls && Date.now() < until) {
        last = calls;
        await sleep(150);
      }
      return calls;
    },
  };
}

const withDir = (run: (dir: string) => Promise<void>) => withTempDir('gatehouse-watch-', run);

void describe('watchFiles', () => {
  void it('sees in-place writes and saves by rename, again and again, and nothing after close', async () => {
    await withDir(async (dir) => {
      const file = join(dir, 'gatehouse.yaml');
      await writeFile(file, 'a: 1\n');
      const w = counting([file]);
      await writeFile(file, 'a: 2\n');
      let calls = await w.changed(0);
      for (const text of ['a: 3\n', 'a: 4\n']) {
        // An editor's save: write a temporary file, rename it over the original (a new inode).
        await writeFile(join(dir, '.gatehouse.yaml.swp'), text);
        await rename(join(dir, '.gatehouse.yaml.swp'), file);
        calls = await w.changed(calls);
      }
      await writeFile(file, 'a: 5\n');
      calls = await w.changed(calls);
      await writeFile(join(dir, 'unrelated.db'), 'x');
      await sleep(150);
      assert.equal(w.calls(), calls, 'other files in the folder do not count');
      w.watch.close();
      await writeFile(file, 'a: 6\n');
      await sleep(150);
      assert.equal(w.calls(), calls, 'closed');
    });
  });

  void it('sees a Kubernetes-style ..data link swap of a mounted ConfigMap or Secret', async () => {
    await withDir(async (dir) => {
      await mkdir(join(dir, '..v1'));
      await writeFile(join(dir, '..v1', 'tls.crt'), 'one');
      await symlink('..v1', join(dir, '..data'));
      await symlink('..data/tls.crt', join(dir, 'tls.crt'));
      const w = counting([join(dir, 'tls.crt')]);
      await mkdir(join(dir, '..v2'));
      await writeFile(join(dir, '..v2', 'tls.crt'), 'two');
      await symlink('..v2', join(dir, '..data_tmp'));
      await rename(join(dir, '..data_tmp'), join(dir, '..data'));
      await rm(join(dir, '..v1'), { recursive: true });
      await w.changed(0);
      w.watch.close();
    });
  });
});

void describe('serialRuns', () => {
  void it('runs once at a time and gives calls made meanwhile one shared run after it, arguments merged', async () => {
    const seen: number[][] = [];
    let release: (() => void) | undefined;
    const run = serialRuns(
      async (arg: number[]) => {
        seen.push(arg);
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return seen.length;
      },
      (queued, next) => [...queued, ...next],
    );
    const first = run([1]);
    const second = run([2]);
    const third = run([3]);
    assert.deepEqual(seen, [[1]], 'the later calls wait');
    release?.();
    assert.equal(await first, 1);
    await sleep(0);
    assert.deepEqual(seen, [[1], [2, 3]]);
    release?.();
    assert.equal(await second, 2);
    assert.equal(await third, 2);
    const fourth = run([4]);
    release?.();
    assert.equal(await fourth, 3, 'idle again: a call runs at once');
  });
});
