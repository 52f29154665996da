import type { Writable } from 'node:stream';

/** Where a command writes: people get tables and colour at a terminal, scripts get `--json`. */
export interface Output {
  readonly json: boolean;
  readonly color: boolean;
  /** A line for people (suppressed in `--json` mode). */
  line(text?: string): void;
  /** A table for people; in `--json` mode the rows are written as a JSON array instead. */
  table<Row extends object>(rows: readonly Row[], columns: readonly Column<Row>[]): void;
  /** The machine-readable result: JSON in `--json` mode, else `human()` for people. */
  result(value: unknown, human?: () => void): void;
  /** A warning or error line on stderr. */
  error(text: string): void;
  /** A plain line on stderr (details under an error, hints). */
  note(text: string): void;
  /**
   * A progress bar on stderr when it is a terminal; silent otherwise. Counts bytes, or things
   * named by `unit` (`keys`).
   */
  progress(label: string, total?: number, unit?: string): Progress;
  bold(text: string): string;
  green(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  dim(text: string): string;
}

export interface Column<Row> {
  readonly header: string;
  readonly value: (row: Row) => unknown;
  readonly align?: 'left' | 'right';
}

export interface Progress {
  /** Adds `n` bytes, or `n` of the progress's unit. */
  advance(n: number): void;
  done(message?: string): void;
}

export interface OutputOptions {
  readonly stdout: Writable & { isTTY?: boolean };
  readonly stderr: Writable & { isTTY?: boolean; columns?: number };
  readonly json: boolean;
  /** Colour when stdout is a terminal unless NO_COLOR or `--no-color` is given. */
  readonly color: boolean;
  readonly now?: () => number;
}

const ANSI = { bold: [1, 22], green: [32, 39], red: [31, 39], yellow: [33, 39], dim: [2, 22] } as const;

function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return value.toString();
  return JSON.stringify(value) ?? '';
}

/** Formats bytes for people: `1536` → `1.5 KiB`. */
export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function createOutput(options: OutputOptions): Output {
  const { stdout, stderr, json, color } = options;
  const now = options.now ?? Date.now;
  const paint = (codes: readonly [number, number]) => (text: string) =>
    color ? `\u001b[${codes[0]}m${text}\u001b[${codes[1]}m` : text;
  const bold = paint(ANSI.bold);
  const out: Output = {
    json,
    color,
    line(text = '') {
      if (!json) stdout.write(`${text}\n`);
    },
    table(rows, columns) {
      if (json) {
        stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      if (rows.length === 0) {
        stdout.write('(none)\n');
        return;
      }
      const cells = rows.map((row) => columns.map((c) => cell(c.value(row))));
      const widths = columns.map((c, i) =>
        Math.max(c.header.length, ...cells.map((r) => (r[i] ?? '').length)),
      );
      const pad = (text: string, i: number) =>
        columns[i]?.align === 'right' ? text.padStart(widths[i] ?? 0) : text.padEnd(widths[i] ?? 0);
      stdout.write(
        `${bold(
          columns
            .map((c, i) => pad(c.header, i))
            .join('  ')
            .trimEnd(),
        )}\n`,
      );
      for (const r of cells)
        stdout.write(
          `${r
            .map((t, i) => pad(t, i))
            .join('  ')
            .trimEnd()}\n`,
        );
    },
    result(value, human) {
      if (json || human === undefined) stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      else human();
    },
    error(text) {
      stderr.write(`${color ? paint(ANSI.red)('error') : 'error'}: ${text}\n`);
    },
    note(text) {
      stderr.write(`${text}\n`);
    },
    progress(label, total, unit) {
      const tty = stderr.isTTY === true && !json;
      const started = now();
      const amount = (n: number) => (unit === undefined ? humanBytes(n) : `${Math.round(n)} ${unit}`);
      let done = 0;
      let lastDraw = 0;
      const draw = (final: boolean) => {
        if (!tty) return;
        const t = now();
        if (!final && t - lastDraw < 100) return;
        lastDraw = t;
        const seconds = Math.max((t - started) / 1000, 0.001);
        const rate = `${amount(done / seconds)}/s`;
        if (total !== undefined && total > 0) {
          const ratio = Math.min(done / total, 1);
          const width = Math.max(10, Math.min(30, (stderr.columns ?? 80) - 60));
          const filled = Math.round(ratio * width);
          const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
          stderr.write(
            `\r${label} [${bar}] ${(ratio * 100).toFixed(0).padStart(3)}% ${amount(done)}/${amount(total)} ${rate}  `,
          );
        } else {
          stderr.write(`\r${label} ${amount(done)} ${rate}  `);
        }
      };
      return {
        advance(n) {
          done += n;
          draw(false);
        },
        done(message) {
          draw(true);
          if (tty) stderr.write(`\n${message === undefined ? '' : `${message}\n`}`);
        },
      };
    },
    bold,
    green: paint(ANSI.green),
    red: paint(ANSI.red),
    yellow: paint(ANSI.yellow),
    dim: paint(ANSI.dim),
  };
  return out;
}
