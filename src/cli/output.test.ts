import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { createOutput } from './output.ts';

/** An output whose stderr is (or is not) a terminal, on a clock the test moves. */
function outputOn(tty: boolean) {
  let text = '';
  const stderr = Object.assign(new PassThrough(), { isTTY: tty, columns: 100 });
  stderr.on('data', (c: Buffer) => {
    text += c.toString();
  });
  let t = 0;
  const out = createOutput({ stdout: new PassThrough(), stderr, json: false, color: false, now: () => t });
  return { out, text: () => text, tick: (ms: number) => (t += ms) };
}

void describe('cli output progress', () => {
  it('counts things by their unit at a terminal, and bytes without one', () => {
    const keys = outputOn(true);
    const p = keys.out.progress('ls orders', undefined, 'keys');
    keys.tick(1000);
    p.advance(2000);
    p.done();
    assert.match(keys.text(), /\rls orders 2000 keys 2000 keys\/s\s*\n$/);
    const bytes = outputOn(true);
    const q = bytes.out.progress('push a.tgz', 4096);
    bytes.tick(1000);
    q.advance(2048);
    q.done();
    assert.match(bytes.text(), /push a\.tgz \[#+-+\]\s+50% 2\.0 KiB\/4\.0 KiB/);
  });

  it('writes nothing when stderr is not a terminal', () => {
    const piped = outputOn(false);
    const p = piped.out.progress('ls orders', undefined, 'keys');
    p.advance(5);
    p.done();
    assert.equal(piped.text(), '');
  });
});
