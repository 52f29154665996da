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

/** An output writing to strings; stdout may claim to be a terminal. */
function capture(options: { color?: boolean; json?: boolean; tty?: boolean } = {}) {
  const text = { out: '', err: '' };
  const stdout = Object.assign(new PassThrough(), { isTTY: options.tty === true });
  const stderr = new PassThrough();
  stdout.on('data', (c: Buffer) => {
    text.out += c.toString();
  });
  stderr.on('data', (c: Buffer) => {
    text.err += c.toString();
  });
  const out = createOutput({ stdout, stderr, json: options.json === true, color: options.color === true });
  return { out, text };
}

void describe('cli output for people escapes control characters', () => {
  const hostile = 'a\nb\rc\td\u001b[31me\u0007f\u007fg\u009bh\u0085i';
  const shown = 'a\\nb\\rc\\td\\x1b[31me\\x07f\\x7fg\\u009bh\\u0085i';

  it('in table cells, keeping the columns aligned and the header bold', () => {
    const { out, text } = capture({ color: true });
    out.table(
      [
        { key: hostile, n: 1 },
        { key: 'k', n: 22 },
      ],
      [
        { header: 'KEY', value: (r) => r.key },
        { header: 'N', value: (r) => r.n, align: 'right' },
      ],
    );
    const pad = ' '.repeat(shown.length - 3);
    assert.equal(
      text.out,
      `\u001b[1mKEY${pad}   N\u001b[22m\n${shown}   1\nk${' '.repeat(shown.length - 1)}  22\n`,
    );
  });

  it('in lines and stderr messages, where colours of the output itself survive', () => {
    const { out, text } = capture({ color: true });
    out.line(`Created ${out.bold(hostile)}`);
    out.error(`Key "${hostile}"\nnot found`);
    out.note(out.dim(hostile));
    assert.equal(text.out, `Created \u001b[1m${shown}\u001b[22m\n`);
    // Messages keep their own line breaks (a parser's excerpt); every other control is shown.
    const keptNewline = shown.replace('a\\nb', 'a\nb');
    assert.equal(
      text.err,
      `\u001b[31merror\u001b[39m: Key "${keptNewline}"\nnot found\n\u001b[2m${keptNewline}\u001b[22m\n`,
    );
  });

  it('shows invisible format characters (bidi overrides, zero-width, separators) as escapes too', () => {
    const { out, text } = capture({});
    // An audit resource from a login attempt with this user name: the override reverses the rest.
    out.table(
      [{ resource: 'user:x\u202Eevil\u200B\u2066y\u2028z\uFEFF\u{E0041}' }],
      [{ header: 'RESOURCE', value: (r) => r.resource }],
    );
    out.line('caf\u00E9 \u{1F512} ok');
    assert.equal(
      text.out,
      'RESOURCE\nuser:x\\u202eevil\\u200b\\u2066y\\u2028z\\ufeff\\u{e0041}\ncaf\u00E9 \u{1F512} ok\n',
    );
  });

  it('does not let data forge a colour of the output', () => {
    const other = capture({ color: true });
    const { out, text } = capture({ color: true });
    out.line(other.out.red('x'));
    assert.ok(!text.out.includes('\u001b'), text.out);
    assert.match(text.out, /x/);
  });

  it('writes a block of lines line by line', () => {
    const { out, text } = capture();
    out.lines('{\n  "k": "\u001b[2J"\n}');
    assert.equal(text.out, '{\n  "k": "\\x1b[2J"\n}\n');
  });

  it('leaves --json output to JSON escaping', () => {
    const { out, text } = capture({ json: true, color: true });
    out.table([{ key: hostile }], [{ header: 'KEY', value: (r) => r.key }]);
    assert.deepEqual(JSON.parse(text.out), [{ key: hostile }]);
  });

  it('writes stored bytes as they are into a pipe, escaped at a terminal', () => {
    const bytes = Buffer.from('x\u001b[2Jy\r\n\tz', 'utf8');
    const piped = capture();
    piped.out.value(bytes);
    assert.equal(piped.text.out, bytes.toString());
    const tty = capture({ tty: true });
    tty.out.value(bytes);
    tty.out.value(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    tty.out.value(Buffer.from('multi\nline\n'));
    assert.equal(tty.text.out, 'x\\x1b[2Jy\\r\n\tz\n\\x89PNG\\x0d\\x0a\\x1a\\x0a\nmulti\nline\n');
  });
});
