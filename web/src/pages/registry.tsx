import {
  Box,
  Button,
  Card,
  CardContent,
  FormControl,
  InputLabel,
  MenuItem,
  Select,
  Stack,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  TextField,
  Typography,
} from '@mui/material';
import { type FormEvent, useState } from 'react';
import type { AuditPage, PolicyTestAnswer, RuleEvaluation } from '../api/types.ts';
import { useAuth } from '../auth/auth-context.tsx';
import { ErrorAlert } from '../components/error-alert.tsx';
import { Page } from '../components/page.tsx';
import { StatusChip } from '../components/status-chip.tsx';
import { useDraft } from '../lib/drafts.ts';
import { formatTime } from '../lib/format.ts';
import { parsePackageSpec } from '../lib/package-spec.ts';
import { parsePrometheus } from '../lib/prometheus.ts';
import { useApi } from '../lib/use-api.ts';
import { useSubmit } from '../lib/use-submit.ts';

export const ECOSYSTEMS = ['npm', 'pypi', 'go', 'maven', 'oci'] as const;

function RuleTable({ rules, label }: { rules: readonly RuleEvaluation[]; label: string }) {
  return (
    <Table size="small" aria-label={label}>
      <TableHead>
        <TableRow>
          <TableCell>Rule</TableCell>
          <TableCell>Result</TableCell>
          <TableCell>Why</TableCell>
        </TableRow>
      </TableHead>
      <TableBody>
        {rules.map((r) => (
          <TableRow key={r.ruleId}>
            <TableCell>{r.ruleName || r.ruleId}</TableCell>
            <TableCell>
              <StatusChip status={r.outcome} />
            </TableCell>
            <TableCell>
              {r.error === undefined ? r.reason : `${r.reason} (rule failed: ${r.error})`}
            </TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}

function PolicyLookup() {
  const { client } = useAuth();
  const [draft, update] = useDraft('registry.lookup', { ecosystem: 'npm', spec: '' });
  const [answer, setAnswer] = useState<PolicyTestAnswer | undefined>(undefined);
  // Asking the uplink can take seconds: the button waits, so a second click sends no second lookup.
  const { busy, error, run } = useSubmit();
  const parsed = parsePackageSpec(draft.spec);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (parsed === undefined) return;
    void run(async () =>
      setAnswer(
        await client.request<PolicyTestAnswer>('POST', '/api/registry/policy/test', {
          body: { ecosystem: draft.ecosystem, ...parsed },
        }),
      ),
    );
  };
  return (
    <Box component="form" onSubmit={submit} aria-label="Package lookup" aria-busy={busy}>
      <Box sx={{ display: 'flex', gap: 2, flexWrap: 'wrap' }}>
        <FormControl size="small" sx={{ minWidth: 120 }}>
          <InputLabel id="eco">Ecosystem</InputLabel>
          <Select
            labelId="eco"
            label="Ecosystem"
            value={draft.ecosystem}
            onChange={(e) => update({ ecosystem: e.target.value })}
          >
            {ECOSYSTEMS.map((e) => (
              <MenuItem key={e} value={e}>
                {e}
              </MenuItem>
            ))}
          </Select>
        </FormControl>
        <TextField
          size="small"
          label="Package (name@version)"
          value={draft.spec}
          onChange={(e) => update({ spec: e.target.value })}
          error={draft.spec !== '' && parsed === undefined}
          helperText={
            draft.spec !== '' && parsed === undefined ? 'Write it as name@version, e.g. left-pad@1.3.0' : ' '
          }
          sx={{ flexGrow: 1, minWidth: 220 }}
        />
        <Button
          type="submit"
          variant="contained"
          loading={busy}
          disabled={parsed === undefined}
          sx={{ alignSelf: 'flex-start' }}
        >
          Run policy
        </Button>
      </Box>
      <ErrorAlert error={error} />
      {answer === undefined ? null : (
        <Box sx={{ mt: 1 }} data-testid="policy-answer">
          <Typography variant="body1" sx={{ mb: 1 }}>
            <StatusChip status={answer.decision.allowed ? 'allow' : 'deny'} /> {answer.decision.reason}
            {answer.found
              ? ''
              : ' (the uplink does not know this version; rules ran on the name and version alone)'}
          </Typography>
          <RuleTable rules={answer.decision.results} label="Rule results" />
        </Box>
      )}
    </Box>
  );
}

function RecentDecisions() {
  const { client, can } = useAuth();
  const allowed = can('audit:read');
  const { data, error, loading, reload } = useApi(
    (signal) =>
      allowed
        ? client.get<AuditPage>('/api/audit-logs', { action: 'registry.decision', limit: 25 }, signal)
        : Promise.resolve({ events: [] }),
    String(allowed),
  );
  if (!allowed)
    return (
      <Typography variant="body2">
        Recent decisions come from the audit log, which needs the audit:read permission.
      </Typography>
    );
  return (
    <Box sx={{ overflowX: 'auto' }}>
      <ErrorAlert error={error} onRetry={reload} />
      <Table size="small" aria-label="Recent decisions">
        <TableHead>
          <TableRow>
            <TableCell>Time</TableCell>
            <TableCell>Package</TableCell>
            <TableCell>Decision</TableCell>
            <TableCell>Deciding rules</TableCell>
            <TableCell>Why</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {data?.events.map((e) => {
            const rules = (e.details?.['rules'] as { id: string; outcome: string }[] | undefined) ?? [];
            const deciding = rules.filter((r) => r.outcome === (e.decision === 'allow' ? 'allow' : 'deny'));
            return (
              <TableRow key={e.seq}>
                <TableCell>{formatTime(e.time)}</TableCell>
                <TableCell>{e.resource}</TableCell>
                <TableCell>
                  <StatusChip status={e.decision} />
                </TableCell>
                <TableCell>{deciding.map((r) => r.id).join(', ') || '—'}</TableCell>
                <TableCell>{e.reason ?? ''}</TableCell>
              </TableRow>
            );
          })}
          {!loading && data?.events.length === 0 ? (
            <TableRow>
              <TableCell colSpan={5}>No registry decisions recorded yet.</TableCell>
            </TableRow>
          ) : null}
        </TableBody>
      </Table>
    </Box>
  );
}

/** `gatehouse_registry_cache_total` summed by registry, kind and result. */
export function cacheStats(metricsText: string): { key: string; hit: number; miss: number; other: number }[] {
  const family = parsePrometheus(metricsText).get('gatehouse_registry_cache_total');
  const rows = new Map<string, { key: string; hit: number; miss: number; other: number }>();
  for (const s of family?.samples ?? []) {
    const key = `${s.labels['registry'] ?? '?'} · ${s.labels['kind'] ?? '?'}`;
    const row = rows.get(key) ?? { key, hit: 0, miss: 0, other: 0 };
    if (s.labels['result'] === 'hit' || s.labels['result'] === 'not_modified') row.hit += s.value;
    else if (s.labels['result'] === 'miss') row.miss += s.value;
    else row.other += s.value;
    rows.set(key, row);
  }
  return [...rows.values()].sort((a, b) => a.key.localeCompare(b.key));
}

function CacheCard() {
  const { client, can } = useAuth();
  const [tick, setTick] = useState(0);
  const stats = useApi(
    async (signal) => cacheStats(await client.get<string>('/metrics', undefined, signal)),
    String(tick),
  );
  const [draft, update, clear] = useDraft('registry.invalidate', { ecosystem: 'npm', name: '' });
  const [result, setResult] = useState<string | undefined>(undefined);
  const { busy, error, run } = useSubmit();
  const invalidate = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      setResult(undefined);
      const answer = await client.request<{ removed: number }>('DELETE', '/api/registry/cache', {
        query: { ecosystem: draft.ecosystem, name: draft.name },
      });
      setResult(`Removed ${answer.removed} cached entries.`);
      clear();
      setTick((t) => t + 1);
    });
  };
  return (
    <Stack spacing={2}>
      <ErrorAlert error={stats.error} onRetry={stats.reload} />
      <Table size="small" aria-label="Cache statistics">
        <TableHead>
          <TableRow>
            <TableCell>Registry · kind</TableCell>
            <TableCell align="right">Hits</TableCell>
            <TableCell align="right">Misses</TableCell>
            <TableCell align="right">Stale / other</TableCell>
            <TableCell align="right">Hit ratio</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {stats.data?.map((r) => (
            <TableRow key={r.key}>
              <TableCell>{r.key}</TableCell>
              <TableCell align="right">{r.hit}</TableCell>
              <TableCell align="right">{r.miss}</TableCell>
              <TableCell align="right">{r.other}</TableCell>
              <TableCell align="right">
                {r.hit + r.miss === 0 ? '—' : `${Math.round((100 * r.hit) / (r.hit + r.miss))}%`}
              </TableCell>
            </TableRow>
          ))}
          {stats.data?.length === 0 ? (
            <TableRow>
              <TableCell colSpan={5}>No cache lookups yet.</TableCell>
            </TableRow>
          ) : null}
        </TableBody>
      </Table>
      {can('registry:cache:invalidate') ? (
        <Box
          component="form"
          onSubmit={invalidate}
          aria-label="Invalidate cache"
          aria-busy={busy}
          sx={{ display: 'flex', gap: 2, flexWrap: 'wrap' }}
        >
          <FormControl size="small" sx={{ minWidth: 120 }}>
            <InputLabel id="inv-eco">Ecosystem</InputLabel>
            <Select
              labelId="inv-eco"
              label="Ecosystem"
              value={draft.ecosystem}
              onChange={(e) => update({ ecosystem: e.target.value })}
            >
              {ECOSYSTEMS.map((e) => (
                <MenuItem key={e} value={e}>
                  {e}
                </MenuItem>
              ))}
            </Select>
          </FormControl>
          <TextField
            size="small"
            label="Package name (empty: all)"
            value={draft.name}
            onChange={(e) => update({ name: e.target.value })}
          />
          <Button type="submit" variant="outlined" color="warning" loading={busy}>
            Invalidate
          </Button>
          {result === undefined ? null : (
            <Typography variant="body2" sx={{ alignSelf: 'center' }} role="status">
              {result}
            </Typography>
          )}
        </Box>
      ) : null}
      <ErrorAlert error={error} />
    </Stack>
  );
}

export function RegistryPage() {
  const { can } = useAuth();
  return (
    <Page title="Registry">
      <Stack spacing={2}>
        {can('registry:policy:test') ? (
          <Card>
            <CardContent>
              <Typography variant="h6" component="h2" gutterBottom>
                Package lookup
              </Typography>
              <PolicyLookup />
            </CardContent>
          </Card>
        ) : null}
        <Card>
          <CardContent>
            <Typography variant="h6" component="h2" gutterBottom>
              Recent decisions
            </Typography>
            <RecentDecisions />
          </CardContent>
        </Card>
        <Card>
          <CardContent>
            <Typography variant="h6" component="h2" gutterBottom>
              Cache
            </Typography>
            <CacheCard />
          </CardContent>
        </Card>
      </Stack>
    </Page>
  );
}
