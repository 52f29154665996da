import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigStore } from './store.ts';
import { integer, object } from './schema.ts';

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

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-store-'));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

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
});
