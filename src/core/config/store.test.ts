import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { open, rename, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { withTempDir } from '#testing/temp-dir';
import { ConfigValidationError } from './load.ts';
import { array, integer, object, string } from './schema.ts';
import { ConfigStore, mergeDynamic } from './store.ts';

const schema = object(
  { burst: integer({ description: 'Burst', dynamic: true }, { default: 1, min: 1 }) },
  'Root',
);

/** Writes `text` into the FIFO once a reader has it open; fails (bounded) when none comes. */
async function feed(fifo: string, text: string): Promise<void> {
  const until = Date.now() + 5000;
  for (;;) {
    try {
      const handle = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      try {
        await handle.write(text);
      } finally {
        await handle.close();
      }
      return;
    } catch (error) {
      // ENXIO: nobody is reading the FIFO (yet).
      if ((error as NodeJS.ErrnoException).code !== 'ENXIO') throw error;
      if (Date.now() > until) assert.fail(`no reload read ${fifo} within 5 s to get ${JSON.stringify(text)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

const withDir = (run: (dir: string) => Promise<void>) => withTempDir('gatehouse-store-', run);

void describe('ConfigStore reload', () => {
  void it('reads the file again for a call made while a reload was reading it', async () => {
    await withDir(async (dir) => {
      const file = join(dir, 'gatehouse.yaml');
      // A FIFO: each read blocks until the test writes, so the first reload is surely mid-read
      // when the file gets its second content and the second call arrives.
      execFileSync('mkfifo', [file]);
      const store = new ConfigStore(schema, { burst: 1 }, { file });
      const first = store.reload();
      const second = store.reload();
      const third = store.reload();
      await feed(file, 'burst: 2\n');
      assert.deepEqual(await first, { ok: true, changed: ['burst'], restartNeeded: [] });
      assert.equal(store.current.burst, 2);
      await feed(file, 'burst: 3\n');
      assert.deepEqual(await second, { ok: true, changed: ['burst'], restartNeeded: [] });
      assert.equal(store.current.burst, 3, 'the later call saw the later content');
      assert.equal(await third, await second, 'calls that arrived during one read share the next');
    });
  });

  void it('lets the file watch skip an emptied file that SIGHUP and the API still apply', async () => {
    await withDir(async (dir) => {
      const file = join(dir, 'gatehouse.yaml');
      await writeFile(file, 'burst: 5\n');
      const store = await ConfigStore.open(schema, { file });
      const outcomes: unknown[] = [];
      store.onReload((outcome) => outcomes.push(outcome));
      const burst = () => store.current.burst;
      store.watch(20);
      try {
        await truncate(file);
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(store.current.burst, 5, 'a truncated file is a write in progress for the watch');
        assert.deepEqual(outcomes, []);
        await writeFile(file, 'burst: 6\n');
        const until = Date.now() + 5000;
        while (burst() !== 6 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
        assert.equal(burst(), 6, 'the watch applies the finished write');
        store.close();
        await truncate(file);
        assert.deepEqual(await store.reload(), { ok: true, changed: ['burst'], restartNeeded: [] });
        assert.equal(burst(), 1, 'an explicit reload applies the empty document (defaults)');
      } finally {
        store.close();
      }
    });
  });

  void it('refuses a document a vet check rejects, as a whole, and swaps nothing', async () => {
    await withDir(async (dir) => {
      const file = join(dir, 'gatehouse.yaml');
      await writeFile(file, 'burst: 5\n');
      const store = await ConfigStore.open(schema, { file });
      const swaps: number[] = [];
      store.subscribe((next) => swaps.push(next.burst));
      const remove = store.vet((next) => {
        if (next.burst === 13) throw new RangeError('unlucky');
      }, 'burst');
      await writeFile(file, 'burst: 13\n');
      const refused = await store.reload();
      assert.equal(refused.ok, false);
      assert.ok(!refused.ok && refused.error instanceof ConfigValidationError);
      assert.deepEqual(!refused.ok && refused.error.issues, [
        { path: 'burst', value: undefined, expected: 'unlucky', problem: 'unlucky' },
      ]);
      // Said as the problem it is, not as a missing value.
      assert.match(refused.ok ? '' : refused.error.message, /burst: unlucky$/m);
      assert.equal(store.current.burst, 5);
      assert.deepEqual(swaps, []);
      remove();
      assert.equal((await store.reload()).ok, true, 'a removed check no longer runs');
      assert.deepEqual(swaps, [13]);
    });
  });

  void it('gives every subscriber the new values when one of them throws, and reports it', async () => {
    await withDir(async (dir) => {
      const file = join(dir, 'gatehouse.yaml');
      await writeFile(file, 'burst: 5\n');
      const store = await ConfigStore.open(schema, { file });
      const seen: number[] = [];
      store.subscribe(() => {
        throw new Error('subscriber bug');
      });
      store.subscribe((next) => seen.push(next.burst));
      await writeFile(file, 'burst: 6\n');
      const outcome = await store.reload();
      assert.ok(outcome.ok);
      assert.deepEqual(
        outcome.listenerErrors?.map((e) => e.message),
        ['subscriber bug'],
      );
      assert.deepEqual(seen, [6]);
      assert.equal(store.current.burst, 6);
    });
  });

  void it('keeps watching the file after saves by rename', async () => {
    await withDir(async (dir) => {
      const file = join(dir, 'gatehouse.yaml');
      await writeFile(file, 'burst: 5\n');
      const store = await ConfigStore.open(schema, { file });
      const burst = () => store.current.burst;
      store.watch(20);
      try {
        for (const value of [6, 7, 8]) {
          await writeFile(join(dir, 'next.yaml'), `burst: ${value}\n`);
          await rename(join(dir, 'next.yaml'), file);
          const until = Date.now() + 5000;
          while (burst() !== value && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
          assert.equal(burst(), value, `save number ${value - 5} by rename was applied`);
        }
      } finally {
        store.close();
      }
    });
  });
});

void describe('mergeDynamic in lists', () => {
  const listeners = object(
    {
      listeners: array(
        object(
          {
            port: integer('Port'),
            deny: array(string('CIDR'), { description: 'Denied', dynamic: true }, { default: [] }),
          },
          'Listener',
        ),
        'Listeners',
      ),
    },
    'Root',
  );
  const before = {
    listeners: [
      { port: 1, deny: [] },
      { port: 2, deny: ['10.0.0.0/8'] },
    ],
  };

  void it('applies dynamic keys of the items of a static list that kept its length', () => {
    const next = {
      listeners: [
        { port: 1, deny: ['192.0.2.0/24'] },
        { port: 3, deny: [] },
      ],
    };
    const merged = mergeDynamic(listeners, before, next);
    assert.deepEqual(merged.changed, ['listeners[0].deny', 'listeners[1].deny']);
    assert.deepEqual(merged.restartNeeded, ['listeners[1].port']);
    assert.deepEqual(merged.value, {
      listeners: [
        { port: 1, deny: ['192.0.2.0/24'] },
        { port: 2, deny: [] },
      ],
    });
  });

  void it('needs a restart for a list that gained or lost items, and keeps it whole', () => {
    const next = { listeners: [{ port: 1, deny: ['192.0.2.0/24'] }] };
    const merged = mergeDynamic(listeners, before, next);
    assert.deepEqual(merged.changed, []);
    assert.deepEqual(merged.restartNeeded, ['listeners']);
    assert.deepEqual(merged.value, before);
  });
});
