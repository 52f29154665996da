import { Box, Typography } from '@mui/material';
import { useTheme } from '@mui/material/styles';
import { useId } from 'react';

/** Points as (time, value); the newest last. */
export type Series = readonly { readonly t: number; readonly v: number }[];

const W = 320;
const H = 110;
const PAD = 4;

/** The SVG path of a series scaled into the chart box (exported for tests). */
export function pathOf(series: Series, width = W, height = H): string {
  if (series.length === 0) return '';
  const t0 = series[0]?.t ?? 0;
  const t1 = series[series.length - 1]?.t ?? 0;
  const max = Math.max(...series.map((p) => p.v), 0) || 1;
  const x = (t: number) => PAD + (t1 === t0 ? 0 : ((t - t0) / (t1 - t0)) * (width - 2 * PAD));
  const y = (v: number) => height - PAD - (v / max) * (height - 2 * PAD);
  return series.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
}

/**
 * A small line chart in plain SVG: one series, a label with the latest value, and a text
 * alternative for screen readers. No chart library is needed for this.
 */
export function LineChart({
  title,
  series,
  format,
}: {
  title: string;
  series: Series;
  format: (v: number) => string;
}) {
  const theme = useTheme();
  const id = useId();
  const latest = series[series.length - 1]?.v;
  const max = Math.max(0, ...series.map((p) => p.v));
  return (
    <Box component="figure" sx={{ m: 0 }} aria-labelledby={id}>
      <Typography id={id} variant="subtitle2" component="figcaption">
        {title}: {latest === undefined ? 'waiting for data' : format(latest)}
      </Typography>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        width="100%"
        height={H}
        role="img"
        aria-label={`${title}, latest ${latest === undefined ? 'none' : format(latest)}, peak ${format(max)}`}
      >
        <rect x="0" y="0" width={W} height={H} fill={theme.palette.action.hover} rx="6" />
        <path d={pathOf(series)} fill="none" stroke={theme.palette.primary.main} strokeWidth="2" />
      </svg>
    </Box>
  );
}
