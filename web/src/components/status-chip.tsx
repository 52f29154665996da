import { Chip } from '@mui/material';

const COLORS = {
  approved: 'success',
  blocked: 'error',
  quarantined: 'warning',
  allow: 'success',
  deny: 'error',
  error: 'error',
  warn: 'warning',
  info: 'default',
  ready: 'success',
  'not ready': 'error',
} as const;

/** A status word with a colour, never colour alone (the word is the label). */
export function StatusChip({ status }: { status: string }) {
  const color = (COLORS as Record<string, (typeof COLORS)[keyof typeof COLORS]>)[status] ?? 'default';
  return (
    <Chip label={status} color={color} size="small" variant={color === 'default' ? 'outlined' : 'filled'} />
  );
}
