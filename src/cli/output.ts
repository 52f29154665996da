import { randomBytes } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import type { Writable } from 'node:stream';

/**
 * Where a command writes: people get tables and colour at a terminal, scripts get `--json`.
 *
 * What people read may hold other people's data (a key another tenant wrote, a name, a server
 * message), so the human forms (`line`, `lines`, `table`, `error`, `note`, `value`) show control
 * characters as escapes (`\n`, `\x1b`, `\u009b`) instead of letting the terminal act on them. The
 * colours of `bold`, `green`, … survive: they are markers only this output can make, turned into
 * escape sequences after the text is escaped. `--json` output is JSON and escapes by itself.
 */
export interface Output {
  readonly json: boolean;
  readonly color: boolean;
  /** One line for people, control characters (a newline too) escaped; suppressed in `--json` mode. */
  line(text?: string): void;
  /** A block of lines for people (a document, JSON or YAML): `line` for each line of `text`. */
  lines(text: string): void;
  /**
   * A table for people, one row a line (control characters of cells escaped); in `--json` mode the
   * rows are written as a JSON array instead.
   */
  table<Row extends object>(rows: readonly Row[], columns: readonly Column<Row>[]): void;
  /** The machine-readable result: JSON in `--json` mode, else `human()` for people. */
  result(value: unknown, human?: () => void): void;
  /**
   * Stored bytes (a kv value): as they are when stdout is not a terminal, as `cat` writes them;
   * at a terminal, escaped by `terminalText` and ended by a newline.
   */
  value(bytes: Uint8Array): void;
  /** A warning or error line on stderr (control characters but newlines escaped). */
  error(text: string): void;
  /** A plain line on stderr (details under an error, hints), escaped as `error` does. */
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

/**
 * C0 controls, DEL and C1 controls: a terminal acts on them (moves, recolours, retitles) instead
 * of showing them. Format characters (bidi overrides and isolates, zero-width characters, tags)
 * and the line and paragraph separators too: they show nothing themselves but reorder or hide
 * the text around them, so server data (a user name tried at login, in `audit ls`) could make a
 * row read as something else.
 */
// oxlint-disable-next-line no-control-regex -- finding control characters is the point.
const CONTROL = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;
const NAMED_CONTROL: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Shows the control characters of `text` as escapes a person can read (`\n`, `\x1b`, `\u009b`),
 * except those in `keep`. Backslashes stay as they are: `--json` tells a newline from a
 * backslash and an `n`.
 */
export function escapeControls(text: string, keep = ''): string {
  return text.replace(CONTROL, (c) => {
    if (keep.includes(c)) return c;
    const code = c.codePointAt(0) ?? 0;
    if (NAMED_CONTROL[c] !== undefined) return NAMED_CONTROL[c];
    if (code < 0x80) return `\\x${code.toString(16).padStart(2, '0')}`;
    return code <= 0xffff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/**
 * Stored bytes as a person at a terminal should see them: UTF-8 text with its control characters
 * escaped but newlines and tabs (a multi-line value stays readable); anything else, such as an
 * image, as printable ASCII with every other byte written `\xNN`.
 */
export function terminalText(bytes: Uint8Array): string {
  if (isUtf8(bytes))
    return escapeControls(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'),
      '\n\t',
    );
  let text = '';
  for (const b of bytes)
    text += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return text;
}

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
  // Colours are painted as markers holding a secret of this process, so that escaping the text
  // cannot tell them from data, and data cannot forge them; `render` turns them into SGR codes.
  const secret = `\u{e000}${randomBytes(8).toString('hex')}:`;
  const marker = new RegExp(`${secret}(\\d+)\u{e001}`, 'gu');
  const paint = (codes: readonly [number, number]) => (text: string) =>
    color ? `${secret}${codes[0]}\u{e001}${text}${secret}${codes[1]}\u{e001}` : text;
  const show = (escaped: string) => escaped.replace(marker, '\u001b[$1m');
  const render = (text: string, keep = '') => show(escapeControls(text, keep));
  const visibleLength = (text: string) => text.replace(marker, '').length;
  const bold = paint(ANSI.bold);
  const out: Output = {
    json,
    color,
    line(text = '') {
      if (!json) stdout.write(`${render(text)}\n`);
    },
    lines(text) {
      for (const line of text.split('\n')) out.line(line);
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
      const cells = rows.map((row) => columns.map((c) => escapeControls(cell(c.value(row)))));
      const widths = columns.map((c, i) =>
        Math.max(c.header.length, ...cells.map((r) => visibleLength(r[i] ?? ''))),
      );
      const pad = (text: string, i: number) => {
        const fill = ' '.repeat(Math.max(0, (widths[i] ?? 0) - visibleLength(text)));
        return columns[i]?.align === 'right' ? `${fill}${text}` : `${text}${fill}`;
      };
      stdout.write(
        `${render(
          bold(
            columns
              .map((c, i) => pad(c.header, i))
              .join('  ')
              .trimEnd(),
          ),
        )}\n`,
      );
      for (const r of cells)
        stdout.write(
          `${show(
            r
              .map((t, i) => pad(t, i))
              .join('  ')
              .trimEnd(),
          )}\n`,
        );
    },
    result(value, human) {
      if (json || human === undefined) stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      else human();
    },
    value(bytes) {
      if (stdout.isTTY !== true) {
        stdout.write(bytes);
        return;
      }
      const text = terminalText(bytes);
      stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    // Messages may span lines (a parser's excerpt under its error), so newlines stay.
    error(text) {
      stderr.write(`${render(`${paint(ANSI.red)('error')}: ${text}`, '\n')}\n`);
    },
    note(text) {
      stderr.write(`${render(text, '\n')}\n`);
    },
    progress(label, total, unit) {
      const tty = stderr.isTTY === true && !json;
      const started = now();
      const amount = (n: number) => (unit === undefined ? humanBytes(n) : `${Math.round(n)} ${unit}`);
      let done = 0;
      let lastDraw = 0;
      const title = render(label);
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
            `\r${title} [${bar}] ${(ratio * 100).toFixed(0).padStart(3)}% ${amount(done)}/${amount(total)} ${rate}  `,
          );
        } else {
          stderr.write(`\r${title} ${amount(done)} ${rate}  `);
        }
      };
      return {
        advance(n) {
          done += n;
          draw(false);
        },
        done(message) {
          draw(true);
          if (tty) stderr.write(`\n${message === undefined ? '' : `${render(message, '\n')}\n`}`);
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
