import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '#core/log';
import type { App, CoreServices } from './app.ts';
import { runApps } from './runner.ts';

interface FakeOptions {
  readonly failStart?: boolean;
  readonly failValidate?: boolean;
  readonly stopNever?: boolean;
}

function fakeApp(name: string, events: string[], options: FakeOptions = {}): App {
  return {
    name,
    provision: () => {
      events.push(`provision:${name}`);
      return Promise.resolve();
    },
    validate: () => {
      events.push(`validate:${name}`);
      return options.failValidate === true
        ? Promise.reject(new RangeError(`bad ${name}`))
        : Promise.resolve();
    },
    start: () => {
      events.push(`start:${name}`);
      return options.failStart === true
        ? Promise.reject(new Error(`port of ${name} in use`))
        : Promise.resolve();
    },
    stop: (deadline) => {
      events.push(`stop:${name}`);
      if (options.stopNever === true) {
        return new Promise((resolve) => {
          deadline.addEventListener('abort', () => {
            events.push(`aborted:${name}`);
            resolve();
          });
        });
      }
      return Promise.resolve();
    },
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}

const core = {} as CoreServices;
const log = silentLogger();

void describe('runApps', () => {
  void it('provisions and validates all, starts in order and stops in reverse', async () => {
    const events: string[] = [];
    const runner = await runApps([fakeApp('a', events), fakeApp('b', events), fakeApp('c', events)], core, {
      log,
    });
    assert.deepEqual(runner.started, ['a', 'b', 'c']);
    await runner.stop();
    await runner.stop();
    assert.deepEqual(events, [
      'provision:a',
      'provision:b',
      'provision:c',
      'validate:a',
      'validate:b',
      'validate:c',
      'start:a',
      'start:b',
      'start:c',
      'stop:c',
      'stop:b',
      'stop:a',
    ]);
  });

  void it('starts nothing when a validation fails', async () => {
    const events: string[] = [];
    await assert.rejects(
      runApps([fakeApp('a', events), fakeApp('b', events, { failValidate: true })], core, { log }),
      RangeError,
    );
    assert.ok(!events.some((e) => e.startsWith('start:')));
  });

  void it('stops what already started when a start fails, then rethrows', async () => {
    const events: string[] = [];
    const apps = [
      fakeApp('a', events),
      fakeApp('b', events),
      fakeApp('c', events, { failStart: true }),
      fakeApp('d', events),
    ];
    await assert.rejects(runApps(apps, core, { log }), /port of c in use/);
    assert.deepEqual(
      events.filter((e) => e.startsWith('start:') || e.startsWith('stop:')),
      ['start:a', 'start:b', 'start:c', 'stop:b', 'stop:a'],
    );
  });

  void it('aborts the deadline signal and moves on when an app does not stop in time', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const events: string[] = [];
    const runner = await runApps([fakeApp('a', events), fakeApp('slow', events, { stopNever: true })], core, {
      log,
      shutdownTimeoutMs: 1000,
    });
    const stopping = runner.stop();
    await Promise.resolve();
    assert.deepEqual(events.slice(-1), ['stop:slow']);
    t.mock.timers.tick(1000);
    await stopping;
    assert.deepEqual(events.slice(-3), ['stop:slow', 'aborted:slow', 'stop:a']);
  });

  void it('refuses two apps with one name', async () => {
    const events: string[] = [];
    await assert.rejects(runApps([fakeApp('a', events), fakeApp('a', events)], core, { log }), TypeError);
  });
});
