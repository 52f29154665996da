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
import { useState } from 'react';
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
  const [draft, update, clear] = useDraft<Filters>('audit.filters', EMPTY);
  const [applied, setApplied] = useState<Filters>(draft);
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [limit, setLimit] = useState(50);
  const [exporting, setExporting] = useState<string | undefined>(undefined);
  const [exportError, setExportError] = useState<unknown>(undefined);
  const cursor = cursors[cursors.length - 1];
  const { data, error, loading, reload } = useApi(
    (signal) => client.get<AuditPage>('/api/audit-logs', { ...apiFilters(applied), limit, cursor }, signal),
    JSON.stringify([applied, cursor, limit]),
  );
  const apply = (f: Filters) => {
    setApplied(f);
    setCursors([undefined]);
  };
  const doExport = async () => {
    setExportError(undefined);
    setExporting('Exporting…');
    try {
      const { text, count, truncated } = await exportAuditJsonl(client, apiFilters(applied), (n) =>
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
      setExportError(e);
    }
  };
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
            {['allow', 'deny', 'error', 'info'].map((d) => (
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
        <Button variant="outlined" onClick={() => void doExport()}>
          Export JSON lines
        </Button>
      </Box>
      {exporting === undefined ? null : (
        <Alert severity="info" role="status" sx={{ mb: 2 }}>
          {exporting}
        </Alert>
      )}
      <ErrorAlert error={exportError} />
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
        <Button disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          Newer
        </Button>
        <Button
          disabled={data?.nextCursor === undefined}
          onClick={() => setCursors((c) => [...c, data?.nextCursor])}
        >
          Older
        </Button>
        <FormControl size="small">
          <InputLabel id="page-size">Per page</InputLabel>
          <Select
            labelId="page-size"
            label="Per page"
            value={limit}
            onChange={(e) => setLimit(Number(e.target.value))}
          >
            {[25, 50, 100, 200].map((n) => (
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
