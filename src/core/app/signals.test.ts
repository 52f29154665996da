import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { installSignalHandlers, type SignalTarget } from './signals.ts';

function target(): EventEmitter & SignalTarget {
  return new EventEmitter();
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

void describe('installSignalHandlers', () => {
  void it('drains on SIGTERM and exits 0', async () => {
    const emitter = target();
    const codes: number[] = [];
    let drained = 0;
    const remove = installSignalHandlers({
      target: emitter,
      exit: (code) => codes.push(code),
      onShutdown: () => {
        drained += 1;
        return Promise.resolve();
      },
    });
    emitter.emit('SIGTERM', 'SIGTERM');
    await flush();
    assert.equal(drained, 1);
    assert.deepEqual(codes, [0]);
    remove();
    assert.equal(emitter.listenerCount('SIGTERM'), 0);
  });

  void it('forces exit on a second signal while draining', async () => {
    const emitter = target();
    const codes: number[] = [];
    installSignalHandlers({
      target: emitter,
      exit: (code) => codes.push(code),
      onShutdown: () => new Promise(() => {}),
    });
    emitter.emit('SIGINT', 'SIGINT');
    await flush();
    assert.deepEqual(codes, []);
    emitter.emit('SIGINT', 'SIGINT');
    assert.deepEqual(codes, [130]);
  });

  void it('exits 1 when the drain passes the hard bound or fails', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const emitter = target();
    const codes: number[] = [];
    installSignalHandlers({
      target: emitter,
      exit: (code) => codes.push(code),
      forceAfterMs: 5000,
      onShutdown: () => new Promise(() => {}),
    });
    emitter.emit('SIGTERM', 'SIGTERM');
    t.mock.timers.tick(4999);
    assert.deepEqual(codes, []);
    t.mock.timers.tick(1);
    assert.deepEqual(codes, [1]);

    const other = target();
    const otherCodes: number[] = [];
    installSignalHandlers({
      target: other,
      exit: (code) => otherCodes.push(code),
      onShutdown: () => Promise.reject(new Error('stuck')),
    });
    other.emit('SIGTERM', 'SIGTERM');
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(otherCodes, [1]);
  });

  void it('reloads on SIGHUP and survives a failing reload', async () => {
    const emitter = target();
    const events: string[] = [];
    installSignalHandlers({
      target: emitter,
      exit: () => events.push('exit'),
      onShutdown: () => Promise.resolve(),
      onReload: () => {
        events.push('reload');
        throw new Error('bad yaml');
      },
      onEvent: (event) => events.push(event),
    });
    emitter.emit('SIGHUP', 'SIGHUP');
    await flush();
    assert.deepEqual(events, ['reload', 'reload', 'reload-failed']);
  });
});
