import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it, type TestContext } from 'node:test';
import { createDeadlineQueue, responseDeadline } from './deadlines.ts';

function queue(t: TestContext) {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  return createDeadlineQueue(500, () => Date.now());
}

void describe('deadline queue', () => {
  void it('fires each armed deadline after the timeout, in order, and never a disarmed one', (t) => {
    const q = queue(t);
    const fired: string[] = [];
    q.arm(() => fired.push('a'));
    t.mock.timers.tick(100);
    const b = q.arm(() => fired.push('b'));
    t.mock.timers.tick(100);
    q.arm(() => fired.push('c'));
    q.disarm(b);
    t.mock.timers.tick(299);
    assert.deepEqual(fired, []);
    t.mock.timers.tick(1);
    assert.deepEqual(fired, ['a']);
    t.mock.timers.tick(199);
    assert.deepEqual(fired, ['a']);
    t.mock.timers.tick(1);
    assert.deepEqual(fired, ['a', 'c']);
    assert.equal(q.size, 0);
  });

  void it('keeps working after it ran empty', (t) => {
    const q = queue(t);
    const fired: number[] = [];
    q.disarm(q.arm(() => fired.push(1)));
    t.mock.timers.tick(1000);
    q.arm(() => fired.push(2));
    t.mock.timers.tick(500);
    assert.deepEqual(fired, [2]);
  });
});

const request = (readableEnded: boolean) => Object.assign(new EventEmitter(), { readableEnded });

void describe('response deadline', () => {
  void it('arms only when the request body has ended', (t) => {
    const q = queue(t);
    const req = request(false);
    let timedOut = false;
    responseDeadline(q, req, () => {
      timedOut = true;
    });
    t.mock.timers.tick(1000);
    assert.equal(timedOut, false, 'a request still sending its body has no response deadline yet');
    req.emit('end');
    t.mock.timers.tick(500);
    assert.equal(timedOut, true);
  });

  void it('arms at once for a request known to have no body, and disarms', (t) => {
    const q = queue(t);
    const req = request(false);
    let timedOut = false;
    const disarm = responseDeadline(
      q,
      req,
      () => {
        timedOut = true;
      },
      true,
    );
    assert.equal(q.size, 1);
    disarm();
    assert.equal(q.size, 0);
    assert.equal(req.listenerCount('end'), 0);
    t.mock.timers.tick(1000);
    assert.equal(timedOut, false);
  });
});
