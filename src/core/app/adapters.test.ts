import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '#core/log';
import { listenerApp, pingCheck } from './adapters.ts';
import type { App, CoreServices } from './app.ts';
import { runApps } from './runner.ts';

void describe('pingCheck', () => {
  void it('maps a resolved ping to ok and a rejected one to its message', async () => {
    let timeout: number | undefined;
    const up = pingCheck((ms) => {
      timeout = ms;
      return Promise.resolve();
    }, 250);
    assert.deepEqual(await up(), { ok: true });
    assert.equal(timeout, 250);
    const down = pingCheck(() => Promise.reject(new Error('Database unavailable')));
    assert.deepEqual(await down(), { ok: false, detail: 'Database unavailable' });
  });
});

void describe('listenerApp', () => {
  void it('listens on start and is the first to drain on stop, with the deadline', async () => {
    const events: string[] = [];
    let seen: AbortSignal | undefined;
    const http = listenerApp('http', {
      listen: () => {
        events.push('listen');
        return Promise.resolve('http://127.0.0.1:1');
      },
      close: (deadline) => {
        seen = deadline;
        events.push('close');
        return Promise.resolve();
      },
    });
    const door: App = {
      name: 'door',
      provision: () => Promise.resolve(),
      validate: () => Promise.resolve(),
      start: () => {
        events.push('door:start');
        return Promise.resolve();
      },
      stop: () => {
        events.push('door:stop');
        return Promise.resolve();
      },
      [Symbol.asyncDispose]: () => Promise.resolve(),
    };
    const runner = await runApps([door, http], {} as CoreServices, { log: silentLogger() });
    await runner.stop();
    assert.deepEqual(events, ['door:start', 'listen', 'close', 'door:stop']);
    assert.ok(seen instanceof AbortSignal);
    await http.stop(new AbortController().signal);
    assert.equal(events.length, 4, 'stopping twice closes once');
  });
});
