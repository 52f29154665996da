import {
  Alert,
  Box,
  Button,
  FormControl,
  InputLabel,
  MenuItem,
  Paper,
  Select,
  Table,
  TableBody,
  TableCell,
  TableContainer,
  TableHead,
  TableRow,
  TextField,
} from '@mui/material';
import { useEffect, useRef, useState } from 'react';
import { useSearchParams } from 'react-router';
import { ApiError } from '../api/problem.ts';
import type { AuditPage, AuditVerification } from '../api/types.ts';
import { useAuth } from '../auth/auth-context.tsx';
import { ErrorAlert } from '../components/error-alert.tsx';
import { Page } from '../components/page.tsx';
import { StatusChip } from '../components/status-chip.tsx';
import { exportAuditJsonl } from '../lib/audit-export.ts';
import { saveBlob } from '../lib/download.ts';
import { useDraft } from '../lib/drafts.ts';
import { formatTime, localZoneName } from '../lib/format.ts';
import { useApi } from '../lib/use-api.ts';
import { useSubmit } from '../lib/use-submit.ts';

const EMPTY = { actor: '', action: '', resource: '', decision: '', from: '', to: '' };
type Filters = typeof EMPTY;

/** `datetime-local` values are local time without a zone; the API wants an instant. */
export function toInstant(local: string): string | undefined {
  if (local === '') return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function apiFilters(f: Filters) {
  return {
    actor: f.actor.trim(),
    action: f.action.trim(),
    resource: f.resource.trim(),
    decision: f.decision,
    from: toInstant(f.from),
    to: toInstant(f.to),
  };
}

const DECISIONS = ['allow', 'deny', 'error', 'info'];
const LIMITS = [25, 50, 100, 200];
const FILTER_KEYS = ['actor', 'action', 'resource', 'decision', 'from', 'to'] as const;

/** An instant as the `datetime-local` picker shows it: the browser's local time, no zone. */
export function toLocalInput(iso: string | undefined): string {
  if (iso === undefined) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  const seconds = d.getSeconds() === 0 ? '' : `:${pad(d.getSeconds())}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}${seconds}`;
}

/** How many newer pages' cursors the URL keeps for "Newer"; past that, the oldest are let go. */
export const TRAIL_MAX = 20;

/**
 * The applied filters, page size and page cursor, read from the URL (times as instants), so a
 * reload, a shared link or a sign-in after expiry shows the same events. Unreadable values are
 * ignored, never sent. `trail` is the cursors of the newer pages paged through to reach this one,
 * oldest visit first (`undefined` for the newest page): the API pages only towards older events,
 * so "Newer" goes back along it.
 */
export function auditQueryOf(params: URLSearchParams) {
  const text = (key: string) => params.get(key)?.trim() ?? '';
  const instant = (key: string) => {
    const value = params.get(key);
    return value === null || Number.isNaN(Date.parse(value)) ? undefined : new Date(value).toISOString();
  };
  const decision = text('decision');
  const limit = Number(params.get('limit') ?? 50);
  return {
    filters: {
      actor: text('actor'),
      action: text('action'),
      resource: text('resource'),
      decision: DECISIONS.includes(decision) ? decision : '',
      from: instant('from'),
      to: instant('to'),
    },
    limit: LIMITS.includes(limit) ? limit : 50,
    cursor: params.get('cursor') ?? undefined,
    trail: params.getAll('newer').map((c) => (c === '' ? undefined : c)),
  };
}

/**
 * The URL of an audit view; empty values and the defaults are left out. The trail is one `newer`
 * per newer page, the newest written empty (`cursor=c3&newer=&newer=c2`).
 */
function auditParams(
  filters: ReturnType<typeof apiFilters>,
  limit: number,
  cursor: string | undefined,
  trail: readonly (string | undefined)[] = [],
) {
  const next = new URLSearchParams();
  for (const [key, value] of Object.entries({ ...filters, limit: limit === 50 ? undefined : limit, cursor }))
    if (value !== undefined && value !== '') next.set(key, String(value));
  if (cursor !== undefined) for (const c of trail.slice(-TRAIL_MAX)) next.append('newer', c ?? '');
  return next;
}

function Verify() {
  const { client } = useAuth();
  const [result, setResult] = useState<AuditVerification | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    try {
      setResult(await client.get<AuditVerification>('/api/audit-logs/verify'));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const broken = error instanceof ApiError && error.code === 'GW_ERR_AUDIT_CHAIN_BROKEN';
  return (
    <Box sx={{ mb: 2 }}>
      <Button variant="outlined" onClick={() => void run()} disabled={busy}>
        {busy ? 'Verifying…' : 'Verify chain'}
      </Button>
      {result === undefined ? null : (
        <Alert severity="success" sx={{ mt: 1 }} data-testid="chain-status">
          The audit chain is intact: {result.checked} records checked.
        </Alert>
      )}
      {broken ? (
        <Alert severity="error" sx={{ mt: 1 }} data-testid="chain-status">
          {error.message}. Records after this point cannot be trusted; keep the database and audit file for
          investigation
          {error.errorId === undefined ? '' : ` (error id ${error.errorId})`}.
        </Alert>
      ) : (
        <ErrorAlert error={error} />
      )}
    </Box>
  );
}

export function AuditPage() {
  const { client } = useAuth();
  const [params, setParams] = useSearchParams();
  const q = auditQueryOf(params);
  const [draft, update, clear] = useDraft<Filters>('audit.filters', EMPTY);
  const [exporting, setExporting] = useState<string | undefined>(undefined);
  // An export walks every page: a second click while it runs starts no second walk.
  const exportRun = useSubmit();
  const applied = JSON.stringify(q.filters);
  // The form shows the filters the URL applies: on a link or Back, and on arrival unless the URL
  // has none (then the text typed before, kept as a draft, stays).
  const synced = useRef(FILTER_KEYS.some((k) => params.has(k)) ? undefined : applied);
  useEffect(() => {
    if (synced.current === applied) return;
    synced.current = applied;
    const f = q.filters;
    update({ ...f, from: toLocalInput(f.from), to: toLocalInput(f.to) });
  });
  const { data, error, loading, reload } = useApi(
    (signal) =>
      client.get<AuditPage>('/api/audit-logs', { ...q.filters, limit: q.limit, cursor: q.cursor }, signal),
    JSON.stringify([q.filters, q.cursor, q.limit]),
  );
  const show = (
    filters: ReturnType<typeof apiFilters>,
    limit: number,
    cursor: string | undefined,
    trail: readonly (string | undefined)[] = [],
  ) => setParams(auditParams(filters, limit, cursor, trail), { replace: true });
  // A link to an older page without its trail (shared, or its trail cut) cannot know the page one
  // step newer: it offers the newest page under that name instead of a "Newer" that skips pages.
  const cold = q.cursor !== undefined && q.trail.length === 0;
  const apply = (f: Filters) => {
    show(apiFilters(f), q.limit, undefined);
  };
  const doExport = () =>
    exportRun.run(async () => {
      setExporting('Exporting…');
      try {
        const { text, count, truncated } = await exportAuditJsonl(client, q.filters, (n) =>
          setExporting(`Exporting… ${n} events`),
        );
        saveBlob(
          new Blob([text], { type: 'application/jsonl' }),
          `gatehouse-audit-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`,
        );
        setExporting(
          truncated
            ? `Exported the first ${count} events; narrow the time range for the rest.`
            : `Exported ${count} events.`,
        );
      } catch (e) {
        setExporting(undefined);
        throw e;
      }
    });
  const field = (key: keyof Filters, label: string, type = 'text') => (
    <TextField
      size="small"
      label={label}
      type={type}
      value={draft[key]}
      onChange={(e) => update({ [key]: e.target.value })}
      {...(type === 'datetime-local' ? { slotProps: { inputLabel: { shrink: true } } } : {})}
    />
  );
  return (
    <Page title="Audit log" loading={loading}>
      <Verify />
      <Box
        component="form"
        aria-label="Audit filters"
        onSubmit={(e) => {
          e.preventDefault();
          apply(draft);
        }}
        sx={{ display: 'flex', flexWrap: 'wrap', gap: 2, mb: 2 }}
      >
        {field('actor', 'Actor')}
        {field('action', 'Action')}
        {field('resource', 'Resource (prefix)')}
        <FormControl size="small" sx={{ minWidth: 130 }}>
          <InputLabel id="decision">Decision</InputLabel>
          <Select
            labelId="decision"
            label="Decision"
            value={draft.decision}
            onChange={(e) => update({ decision: e.target.value })}
          >
            <MenuItem value="">Any</MenuItem>
            {DECISIONS.map((d) => (
              <MenuItem key={d} value={d}>
                {d}
              </MenuItem>
            ))}
          </Select>
        </FormControl>
        {field('from', `From (${localZoneName()})`, 'datetime-local')}
        {field('to', `To (${localZoneName()})`, 'datetime-local')}
        <Button type="submit" variant="contained">
          Apply
        </Button>
        <Button
          onClick={() => {
            clear();
            apply(EMPTY);
          }}
        >
          Clear
        </Button>
        <Button variant="outlined" loading={exportRun.busy} onClick={() => void doExport()}>
          Export JSON lines
        </Button>
      </Box>
      {exporting === undefined ? null : (
        <Alert severity="info" role="status" sx={{ mb: 2 }}>
          {exporting}
        </Alert>
      )}
      <ErrorAlert error={exportRun.error} />
      <ErrorAlert error={error} onRetry={reload} />
      <TableContainer component={Paper}>
        <Table size="small" aria-label="Audit events">
          <TableHead>
            <TableRow>
              <TableCell>#</TableCell>
              <TableCell>Time</TableCell>
              <TableCell>Actor</TableCell>
              <TableCell>Action</TableCell>
              <TableCell>Resource</TableCell>
              <TableCell>Decision</TableCell>
              <TableCell>Reason</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {data?.events.map((e) => (
              <TableRow key={e.seq} data-testid="audit-row">
                <TableCell>{e.seq}</TableCell>
                <TableCell>{formatTime(e.time)}</TableCell>
                <TableCell>{e.actor}</TableCell>
                <TableCell>{e.action}</TableCell>
                <TableCell sx={{ overflowWrap: 'anywhere' }}>{e.resource}</TableCell>
                <TableCell>
                  <StatusChip status={e.decision} />
                </TableCell>
                <TableCell>{e.reason ?? ''}</TableCell>
              </TableRow>
            ))}
            {data?.events.length === 0 ? (
              <TableRow>
                <TableCell colSpan={7}>No events match.</TableCell>
              </TableRow>
            ) : null}
          </TableBody>
        </Table>
      </TableContainer>
      <Box sx={{ display: 'flex', gap: 2, alignItems: 'center', mt: 1 }}>
        <Button
          disabled={q.cursor === undefined}
          onClick={() => show(q.filters, q.limit, q.trail.at(-1), q.trail.slice(0, -1))}
        >
          {cold ? 'Newest' : 'Newer'}
        </Button>
        <Button
          disabled={data?.nextCursor === undefined}
          onClick={() => show(q.filters, q.limit, data?.nextCursor, [...q.trail, q.cursor])}
        >
          Older
        </Button>
        <FormControl size="small">
          <InputLabel id="page-size">Per page</InputLabel>
          <Select
            labelId="page-size"
            label="Per page"
            value={q.limit}
            onChange={(e) => show(q.filters, Number(e.target.value), undefined)}
          >
            {LIMITS.map((n) => (
              <MenuItem key={n} value={n}>
                {n}
              </MenuItem>
            ))}
          </Select>
        </FormControl>
      </Box>
    </Page>
  );
}
