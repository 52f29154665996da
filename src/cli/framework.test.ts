import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { PassThrough, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { runCliCaptured } from '#testing/cli-run';
import { type CommandSpec, EXIT, parseArgs, runCli } from './framework.ts';

const commands: CommandSpec[] = [
  {
    name: 'things list',
    summary: 'List things',
    flags: [{ name: 'limit', type: 'number', description: 'Max rows' }],
    run(ctx) {
      const rows = [
        { name: 'a', size: 1 },
        { name: 'bb', size: 22 },
      ].slice(0, Number(ctx.flags['limit'] ?? 10));
      ctx.out.table(rows, [
        { header: 'NAME', value: (r) => r.name },
        { header: 'SIZE', value: (r) => r.size, align: 'right' },
      ]);
      return EXIT.ok;
    },
  },
  {
    name: 'things add',
    summary: 'Add a thing',
    usage: 'NAME',
    args: { min: 1, max: 1 },
    flags: [{ name: 'kind', type: 'string', required: true, description: 'Kind' }],
    run(ctx) {
      ctx.out.result({ added: ctx.args[0], kind: ctx.flag('kind') }, () =>
        ctx.out.line(`added ${ctx.args[0]}`),
      );
      return EXIT.ok;
    },
  },
  {
    name: 'things check',
    summary: 'Print a verdict and exit 10',
    run(ctx) {
      for (let i = 0; i < 3; i += 1) ctx.out.line(`line ${i}`);
      return EXIT.denied;
    },
  },
];

/** A stdout whose reader went away: every write fails with EPIPE, as a closed pipe does. */
function closedPipe(): Writable {
  return new Writable({
    write(_chunk, _encoding, callback) {
      callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE', errno: -32, syscall: 'write' }));
    },
  });
}

describe('cli framework', () => {
  it('parses long, inline, short, list and number flags and --', () => {
    const parsed = parseArgs(
      ['a', '--n', '3', '--s=x=y', '-h', '--l', '1', '--l', '2', '--', '--not-a-flag'],
      [
        { name: 'n', type: 'number', description: '' },
        { name: 's', type: 'string', description: '' },
        { name: 'help', short: 'h', type: 'boolean', description: '' },
        { name: 'l', type: 'list', description: '' },
      ],
    );
    assert.deepEqual(parsed.args, ['a', '--not-a-flag']);
    assert.deepEqual(parsed.flags, { n: 3, s: 'x=y', help: true, l: ['1', '2'] });
  });

  it('prints an aligned table for people and JSON for scripts', async () => {
    const a = await runCliCaptured(['things', 'list'], commands);
    assert.equal(a.code, 0);
    assert.equal(a.out, 'NAME  SIZE\na        1\nbb      22\n');
    const b = await runCliCaptured(['things', 'list', '--json', '--limit', '1'], commands);
    assert.equal(b.code, 0);
    assert.deepEqual(JSON.parse(b.out), [{ name: 'a', size: 1 }]);
  });

  it('answers usage mistakes with a clear message and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['things', 'list', '--limit', 'ten'], /needs a number, got "ten"/],
      [['things', 'list', '--bogus'], /Unknown flag "--bogus"/],
      [['things', 'add', 'x'], /Missing required flag "--kind"/],
      [['things', 'add', '--kind', 'k'], /needs NAME/],
      [['things', 'add', 'x', 'y', '--kind', 'k'], /Unexpected argument "y"/],
      [['nothing'], /Unknown command "nothing"; run "gatehouse help"/],
      [['things', 'drop'], /Unknown command "things drop"; run "gatehouse things --help"/],
    ];
    for (const [argv, message] of cases) {
      const c = await runCliCaptured(argv, commands);
      assert.equal(c.code, EXIT.usage, argv.join(' '));
      assert.match(c.err, message);
    }
  });

  it('reports errors as JSON in --json mode', async () => {
    const c = await runCliCaptured(['things', 'list', '--json', '--bogus'], commands);
    assert.equal(c.code, EXIT.usage);
    assert.equal(JSON.parse(c.out).error.code, 'GW_ERR_CLI_USAGE');
  });

  it('shows help for the whole CLI and for one command', async () => {
    const c = await runCliCaptured(['help'], commands);
    assert.match(c.out, /things add\s+Add a thing/);
    const d = await runCliCaptured(['things', 'add', '--help'], commands);
    assert.match(d.out, /Usage: gatehouse things add NAME/);
    assert.match(d.out, /--kind\s+Kind \(required\)/);
  });

  it('lists the commands of a group named alone, with --help, or after help', async () => {
    for (const [argv, exit] of [
      [['things'], EXIT.usage],
      [['things', '--help'], EXIT.ok],
      [['things', '-h'], EXIT.ok],
      [['help', 'things'], EXIT.ok],
    ] as const) {
      const c = await runCliCaptured(argv, commands);
      assert.equal(c.code, exit, argv.join(' '));
      assert.match(c.out, /Usage: gatehouse things <command>/, argv.join(' '));
      assert.match(c.out, /things add\s+Add a thing/);
      assert.match(c.out, /things list\s+List things/);
      assert.match(c.out, /Run "gatehouse things <command> --help"/);
    }
  });

  it('keeps its own exit code and stays quiet when the reader of stdout went away', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      const stderr = new PassThrough();
      let err = '';
      stderr.on('data', (c: Buffer) => {
        err += c.toString();
      });
      const code = await runCli(['things', 'check'], commands, {
        env: {},
        stdout: closedPipe(),
        stderr,
        stdin: new PassThrough(),
      });
      // The write's error is emitted on a later tick, after the command returned.
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(code, EXIT.denied);
      assert.deepEqual(uncaught, []);
      assert.equal(err, '');
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });

  it("exits with the command's code and no stack trace when piped into a reader that closed (| head)", async () => {
    const main = fileURLToPath(new URL('../main.ts', import.meta.url));
    // Invalid: exit 2 with the JSON report on stdout, whose reader is gone before it is written.
    const child = spawn(
      process.execPath,
      [main, 'config', 'validate', '--json', '/nonexistent/gatehouse.yaml'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout.destroy();
    let err = '';
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    const [code] = (await once(child, 'close')) as [number | null];
    assert.doesNotMatch(err, /EPIPE|Node\.js v|\n\s+at /);
    assert.notEqual(code, 1, err);
  });
});
