import {
  Box,
  Button,
  FormControl,
  InputLabel,
  Link,
  MenuItem,
  Paper,
  Select,
  Table,
  TableBody,
  TableCell,
  TableContainer,
  TableHead,
  TablePagination,
  TableRow,
  TableSortLabel,
  TextField,
} from '@mui/material';
import { useEffect, useState } from 'react';
import { Link as RouterLink, useSearchParams } from 'react-router';
import type { ArtifactPage, Repository } from '../api/types.ts';
import { useAuth } from '../auth/auth-context.tsx';
import { ErrorAlert } from '../components/error-alert.tsx';
import { Page } from '../components/page.tsx';
import { RepositoryList } from '../components/repository-list.tsx';
import { StatusChip } from '../components/status-chip.tsx';
import { formatBytes, formatTime, shortDigest } from '../lib/format.ts';
import { useApi } from '../lib/use-api.ts';

type Sort = 'name' | 'created' | 'size';
const SORTS: readonly Sort[] = ['name', 'created', 'size'];

/** Reads the list state from the URL, so a reload, a shared link or Back shows the same page. */
export function listQueryOf(params: URLSearchParams) {
  const sort = params.get('sort');
  const limit = Number(params.get('limit') ?? 25);
  return {
    name: params.get('name') ?? '',
    repository: params.get('repository') ?? '',
    status: params.get('status') ?? '',
    sort: (SORTS as readonly string[]).includes(sort ?? '') ? (sort as Sort) : 'created',
    order: params.get('order') === 'asc' ? 'asc' : ('desc' as 'asc' | 'desc'),
    page: Math.max(0, Number(params.get('page') ?? 0) || 0),
    limit: [10, 25, 50, 100].includes(limit) ? limit : 25,
  };
}

export function ArtifactsPage() {
  const { client, can } = useAuth();
  const [params, setParams] = useSearchParams();
  const q = listQueryOf(params);
  const [search, setSearch] = useState(q.name);
  // The URL can change under the box (a link, Back, a shared link): the box follows it, or the
  // pause below would write the old text back into the URL.
  const [shown, setShown] = useState(q.name);
  if (shown !== q.name) {
    setShown(q.name);
    setSearch(q.name);
  }
  const set = (patch: Record<string, string | number>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(patch)) {
      if (v === '' || v === 0) next.delete(k);
      else next.set(k, String(v));
    }
    setParams(next, { replace: true });
  };
  // Typing filters after a pause, not on every key stroke.
  useEffect(() => {
    if (search === q.name) return;
    const timer = setTimeout(() => set({ name: search, page: 0 }), 300);
    return () => clearTimeout(timer);
  });
  const key = JSON.stringify(q);
  const { data, error, loading, reload } = useApi(
    (signal) =>
      client.get<ArtifactPage>(
        '/api/artifacts',
        {
          name: q.name,
          repository: q.repository,
          status: q.status,
          sort: q.sort,
          order: q.order,
          limit: q.limit,
          offset: q.page * q.limit,
        },
        signal,
      ),
    key,
  );
  // A page past the end (an old link, the last artifact of the last page gone) shows the last
  // page instead of "No artifacts match" beside a count of matches.
  const lastPage = data === undefined ? 0 : Math.max(0, Math.ceil(data.total / q.limit) - 1);
  useEffect(() => {
    if (data !== undefined && data.items.length === 0 && q.page > lastPage) set({ page: lastPage });
  });
  const repositories = useApi(
    (signal) =>
      client.get<{ repositories: Repository[] }>('/api/artifacts/-/repositories', undefined, signal),
    'repositories',
  );
  const sortBy = (column: Sort) =>
    set({ sort: column, order: q.sort === column && q.order === 'desc' ? 'asc' : 'desc', page: 0 });

  return (
    <Page
      title="Artifacts"
      loading={loading}
      actions={
        can('artifacts:upload') ? (
          <Button variant="contained" component={RouterLink} to="/artifacts/upload">
            Upload
          </Button>
        ) : undefined
      }
    >
      <ErrorAlert error={repositories.error} onRetry={repositories.reload} />
      {repositories.data === undefined ? null : (
        <RepositoryList
          repositories={repositories.data.repositories}
          selected={q.repository}
          onSelect={(name) => set({ repository: name, page: 0 })}
        />
      )}
      <Box sx={{ display: 'flex', flexWrap: 'wrap', gap: 2, mb: 2 }} role="search">
        <TextField
          label="Search by name"
          size="small"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
          sx={{ minWidth: 200, flexGrow: 1 }}
        />
        <TextField
          label="Repository"
          size="small"
          value={q.repository}
          onChange={(e) => set({ repository: e.target.value, page: 0 })}
        />
        <FormControl size="small" sx={{ minWidth: 150 }}>
          <InputLabel id="status-filter">Status</InputLabel>
          <Select
            labelId="status-filter"
            label="Status"
            value={q.status}
            onChange={(e) => set({ status: e.target.value, page: 0 })}
          >
            <MenuItem value="">Any</MenuItem>
            <MenuItem value="approved">Approved</MenuItem>
            <MenuItem value="quarantined">Quarantined</MenuItem>
            <MenuItem value="blocked">Blocked</MenuItem>
          </Select>
        </FormControl>
      </Box>
      <ErrorAlert error={error} onRetry={reload} />
      <TableContainer component={Paper}>
        <Table size="small" aria-label="Artifacts">
          <TableHead>
            <TableRow>
              {(['name', 'created', 'size'] as const).map((c) => (
                <TableCell
                  key={c}
                  sortDirection={q.sort === c ? q.order : false}
                  align={c === 'size' ? 'right' : 'left'}
                >
                  <TableSortLabel
                    active={q.sort === c}
                    direction={q.sort === c ? q.order : 'desc'}
                    onClick={() => sortBy(c)}
                  >
                    {c === 'created' ? 'Uploaded' : c === 'name' ? 'Name' : 'Size'}
                  </TableSortLabel>
                </TableCell>
              ))}
              <TableCell>Version</TableCell>
              <TableCell>Repository</TableCell>
              <TableCell>Status</TableCell>
              {/* A short digest is read as one word: never broken over lines (code may break anywhere). */}
              <TableCell sx={{ whiteSpace: 'nowrap' }}>SHA-256</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {data?.items.map((a) => (
              <TableRow key={a.id} hover>
                <TableCell>
                  <Link component={RouterLink} to={`/artifacts/${a.id}`}>
                    {a.name}
                  </Link>
                </TableCell>
                <TableCell>{formatTime(a.createdAt)}</TableCell>
                <TableCell align="right">{formatBytes(a.size)}</TableCell>
                <TableCell>{a.version}</TableCell>
                <TableCell>{a.repository}</TableCell>
                <TableCell>
                  <StatusChip status={a.status} />
                </TableCell>
                <TableCell sx={{ whiteSpace: 'nowrap' }}>
                  <code title={a.sha256} data-testid="short-digest">
                    {shortDigest(a.sha256)}
                  </code>
                </TableCell>
              </TableRow>
            ))}
            {data !== undefined && data.items.length === 0 ? (
              <TableRow>
                <TableCell colSpan={7}>No artifacts match.</TableCell>
              </TableRow>
            ) : null}
          </TableBody>
        </Table>
      </TableContainer>
      <TablePagination
        component="div"
        count={data?.total ?? 0}
        page={q.page}
        rowsPerPage={q.limit}
        rowsPerPageOptions={[10, 25, 50, 100]}
        onPageChange={(_e, page) => set({ page })}
        onRowsPerPageChange={(e) => set({ limit: Number(e.target.value), page: 0 })}
      />
    </Page>
  );
}
