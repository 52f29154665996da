import {
  Alert,
  Box,
  Card,
  CardContent,
  Stack,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  Typography,
} from '@mui/material';
import { useEffect, useRef, useState } from 'react';
import { ApiError } from '../api/problem.ts';
import { useAuth } from '../auth/auth-context.tsx';
import { ErrorAlert } from '../components/error-alert.tsx';
import { LineChart, type Series } from '../components/line-chart.tsx';
import { Page } from '../components/page.tsx';
import { StatusChip } from '../components/status-chip.tsx';
import { formatBytes, formatTime } from '../lib/format.ts';
import { type MetricFamily, parsePrometheus, sumOf } from '../lib/prometheus.ts';

/** How often the page samples `/metrics`, and how many samples each chart keeps. */
export const SAMPLE_MS = 5000;
export const KEEP = 60;

interface HealthAnswer {
  readonly status: string;
  readonly checks?: Record<string, { ok: boolean; detail?: string; latencyMs?: number }>;
}

/** The numbers the charts plot, taken from one scrape. */
export function snapshotOf(families: Map<string, MetricFamily>) {
  const requests = sumOf(families, 'gatehouse_http_requests_total');
  let errors = 0;
  for (const s of families.get('gatehouse_http_requests_total')?.samples ?? [])
    if ((s.labels['status'] ?? '').startsWith('5')) errors += s.value;
  return {
    requests,
    errors,
    inFlight: sumOf(families, 'gatehouse_http_requests_in_flight'),
    rss: sumOf(families, 'gatehouse_process_resident_memory_bytes'),
    uploads: sumOf(families, 'gatehouse_artifacts_uploads_total'),
    decisions: sumOf(families, 'gatehouse_registry_decisions_total'),
  };
}
type Snapshot = ReturnType<typeof snapshotOf>;

/** Per-second rate between consecutive counter samples (a restart's reset counts as zero). */
export function rates(samples: readonly { t: number; s: Snapshot }[], key: keyof Snapshot): Series {
  const out: { t: number; v: number }[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    if (a === undefined || b === undefined || b.t <= a.t) continue;
    out.push({ t: b.t, v: Math.max(0, (b.s[key] - a.s[key]) / ((b.t - a.t) / 1000)) });
  }
  return out;
}

export function HealthPage() {
  const { client } = useAuth();
  const [health, setHealth] = useState<HealthAnswer | undefined>(undefined);
  // When the readiness answer shown was received: once the server stops answering, the table
  // is that old, and says so instead of passing an old green for the present.
  const [checkedAt, setCheckedAt] = useState<string | undefined>(undefined);
  const [stale, setStale] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [samples, setSamples] = useState<{ t: number; s: Snapshot }[]>([]);
  const stopped = useRef(false);
  useEffect(() => {
    stopped.current = false;
    const tick = async () => {
      let answered = false;
      try {
        // 503 carries the same document: a failing dependency is what this page is for.
        const answer = await client.get<HealthAnswer>('/api/health').catch((e: unknown) => {
          if (e instanceof ApiError && e.status === 503)
            return {
              status: 'unavailable',
              checks: (e.body as Partial<HealthAnswer> | undefined)?.checks ?? {},
            };
          throw e;
        });
        if (stopped.current) return;
        answered = true;
        setHealth(answer);
        setCheckedAt(new Date().toISOString());
        setStale(false);
        const text = await client.get<string>('/metrics');
        if (stopped.current) return;
        setSamples((old) => [...old, { t: Date.now(), s: snapshotOf(parsePrometheus(text)) }].slice(-KEEP));
        setError(undefined);
      } catch (e) {
        if (stopped.current) return;
        setError(e);
        if (!answered) setStale(true);
      }
    };
    void tick();
    const timer = setInterval(() => void tick(), SAMPLE_MS);
    return () => {
      stopped.current = true;
      clearInterval(timer);
    };
  }, [client]);
  const gauge = (key: keyof Snapshot): Series => samples.map((x) => ({ t: x.t, v: x.s[key] }));
  const checks = Object.entries(health?.checks ?? {}).sort(([a], [b]) => a.localeCompare(b));
  // The last readiness answer is older than the failure under the banner: mark it, do not show it as now.
  const state = (ok: boolean) => {
    const word = ok ? 'ready' : 'not ready';
    return stale ? `stale (was ${word})` : word;
  };
  return (
    <Page title="Health" loading={health === undefined && error === undefined}>
      <ErrorAlert error={error} />
      <Stack spacing={2}>
        <Card>
          <CardContent>
            <Typography variant="h6" component="h2" gutterBottom>
              Readiness {health === undefined ? null : <StatusChip status={state(health.status === 'ok')} />}
            </Typography>
            {checkedAt === undefined ? null : stale ? (
              <Alert severity="warning" role="status" data-testid="readiness-stale" sx={{ mb: 1 }}>
                Stale: the server has not answered since the last successful check at {formatTime(checkedAt)}.
                The results below are from that check.
              </Alert>
            ) : (
              <Typography variant="body2" color="text.secondary" data-testid="readiness-checked">
                Last successful check: {formatTime(checkedAt)}
              </Typography>
            )}
            <Table size="small" aria-label="Readiness checks">
              <TableHead>
                <TableRow>
                  <TableCell>Door or dependency</TableCell>
                  <TableCell>State</TableCell>
                  <TableCell>Detail</TableCell>
                </TableRow>
              </TableHead>
              <TableBody>
                {checks.map(([name, c]) => (
                  <TableRow key={name}>
                    <TableCell>{name}</TableCell>
                    <TableCell>
                      <StatusChip status={state(c.ok)} />
                    </TableCell>
                    <TableCell>
                      {[c.detail, c.latencyMs === undefined ? undefined : `${c.latencyMs} ms`]
                        .filter(Boolean)
                        .join(' · ')}
                    </TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          </CardContent>
        </Card>
        <Card>
          <CardContent>
            <Typography variant="h6" component="h2" gutterBottom>
              Key metrics (sampled every {SAMPLE_MS / 1000} s while this page is open)
            </Typography>
            <Box
              sx={{
                display: 'grid',
                gridTemplateColumns: { xs: '1fr', sm: '1fr 1fr', lg: '1fr 1fr 1fr' },
                gap: 2,
              }}
            >
              <LineChart
                title="HTTP requests per second"
                series={rates(samples, 'requests')}
                format={(v) => v.toFixed(2)}
              />
              <LineChart
                title="HTTP 5xx per second"
                series={rates(samples, 'errors')}
                format={(v) => v.toFixed(2)}
              />
              <LineChart
                title="Requests in flight"
                series={gauge('inFlight')}
                format={(v) => String(Math.round(v))}
              />
              <LineChart title="Resident memory" series={gauge('rss')} format={formatBytes} />
              <LineChart
                title="Artifact uploads per second"
                series={rates(samples, 'uploads')}
                format={(v) => v.toFixed(2)}
              />
              <LineChart
                title="Registry rule results per second"
                series={rates(samples, 'decisions')}
                format={(v) => v.toFixed(2)}
              />
            </Box>
          </CardContent>
        </Card>
      </Stack>
    </Page>
  );
}
