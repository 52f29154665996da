import type { Writable } from 'node:stream';

export const LOG_LEVELS = { debug: 20, info: 30, warn: 40, error: 50, silent: 100 } as const;
export type LogLevel = keyof typeof LOG_LEVELS;
export type LogFields = Readonly<Record<string, unknown>>;

/** Structured logger handed to every module through CoreServices. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (e.g. `{ door: 'edge' }`). */
  child(fields: LogFields): Logger;
  readonly level: LogLevel;
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  /** `json` (one object per line, the default) or `pretty` for people at a terminal. */
  readonly format?: 'json' | 'pretty';
  readonly stream?: Writable;
  readonly fields?: LogFields;
  /** Injected clock for tests. */
  readonly now?: () => number;
}

function serializeError(value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const out: Record<string, unknown> = { name: value.name, message: value.message, stack: value.stack };
  for (const [k, v] of Object.entries(value)) out[k] = v;
  if (value.cause !== undefined) out['cause'] = serializeError(value.cause);
  return out;
}

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return serializeError(value);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** Creates a logger writing one line per event to `stream` (stderr by default). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const threshold = LOG_LEVELS[level];
  const stream = options.stream ?? process.stderr;
  const format = options.format ?? 'json';
  const now = options.now ?? Date.now;
  const base = options.fields ?? {};
  const write = (lvl: Exclude<LogLevel, 'silent'>, message: string, fields?: LogFields) => {
    if (LOG_LEVELS[lvl] < threshold) return;
    const time = new Date(now()).toISOString();
    if (format === 'pretty') {
      const extra = { ...base, ...fields };
      const rest = Object.keys(extra).length === 0 ? '' : ` ${JSON.stringify(extra, replacer)}`;
      stream.write(`${time} ${lvl.toUpperCase().padEnd(5)} ${message}${rest}\n`);
      return;
    }
    stream.write(`${JSON.stringify({ time, level: lvl, msg: message, ...base, ...fields }, replacer)}\n`);
  };
  return {
    level,
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}

/** A logger that drops everything, for tests that do not read logs. */
export function silentLogger(): Logger {
  return createLogger({ level: 'silent' });
}
