import { describe, expect, it } from 'vitest';
import { formatBytes, formatTime, localZoneName } from './format.ts';

describe('formatTime', () => {
  it('names the time zone the time is shown in', () => {
    const zone = new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' })
      .formatToParts(new Date('2026-01-02T03:04:05Z'))
      .find((p) => p.type === 'timeZoneName')?.value;
    expect(zone).toBeTruthy();
    const shown = formatTime('2026-01-02T03:04:05Z');
    expect(shown).toContain(String(zone));
    expect(shown).toContain('2026');
    expect(localZoneName(new Date('2026-01-02T03:04:05Z'))).toBe(zone);
  });

  it('shows a dash for no time and the raw text for one it cannot read', () => {
    expect(formatTime(null)).toBe('—');
    expect(formatTime('')).toBe('—');
    expect(formatTime('not a time')).toBe('not a time');
  });
});

describe('formatBytes', () => {
  it('always names the unit', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.0 MiB');
  });
});
