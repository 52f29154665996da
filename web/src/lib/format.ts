const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1536` → `1.5 KiB`. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

const TIME = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  timeZoneName: 'short',
});

/**
 * A timestamp in the user's locale and time zone, the zone named (`Dec 4, 2026, 07:18:14 PM UTC`):
 * an operator comparing it with a log or another colleague's screen must know which clock it is.
 */
export function formatTime(iso: string | null | undefined): string {
  if (iso === null || iso === undefined || iso === '') return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : TIME.format(d);
}

/** The short name of the browser's time zone (`UTC`, `CET`, `GMT+2`), for inputs in local time. */
export function localZoneName(at = new Date()): string {
  return TIME.formatToParts(at).find((p) => p.type === 'timeZoneName')?.value ?? 'local time';
}

/** `abcdef…` for long digests in tables. */
export function shortDigest(hex: string, length = 12): string {
  return hex.length <= length ? hex : `${hex.slice(0, length)}…`;
}
