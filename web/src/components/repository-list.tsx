import {
  Link,
  Paper,
  Table,
  TableBody,
  TableCell,
  TableContainer,
  TableHead,
  TableRow,
  Typography,
} from '@mui/material';
import type { Repository } from '../api/types.ts';
import { formatBytes, formatTime } from '../lib/format.ts';

function quotaText(r: Repository): string {
  if (r.quota === 0) return `${formatBytes(r.size)} (no quota)`;
  return `${formatBytes(r.size)} of ${formatBytes(r.quota)} (${Math.round((r.size / r.quota) * 100)}%)`;
}

/**
 * The repositories the caller may list, with their counts; choosing one filters the artifacts
 * below (the choice is a button with the state announced, so keyboards and screen readers get it).
 */
export function RepositoryList({
  repositories,
  selected,
  onSelect,
}: {
  repositories: readonly Repository[];
  selected: string;
  onSelect: (name: string) => void;
}) {
  return (
    <TableContainer component={Paper} sx={{ mb: 2 }}>
      <Table size="small" aria-label="Repositories">
        <TableHead>
          <TableRow>
            <TableCell>Repository</TableCell>
            <TableCell align="right">Artifacts</TableCell>
            <TableCell align="right">Quarantined</TableCell>
            <TableCell align="right">Blocked</TableCell>
            <TableCell>Storage</TableCell>
            <TableCell>Last upload</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {repositories.map((r) => (
            <TableRow key={r.name} selected={r.name === selected}>
              <TableCell>
                <Link
                  component="button"
                  type="button"
                  aria-pressed={r.name === selected}
                  onClick={() => onSelect(r.name === selected ? '' : r.name)}
                >
                  {r.name}
                </Link>
              </TableCell>
              <TableCell align="right">{r.artifacts}</TableCell>
              <TableCell align="right">{r.quarantined}</TableCell>
              <TableCell align="right">{r.blocked}</TableCell>
              <TableCell>{quotaText(r)}</TableCell>
              <TableCell>{r.lastUploadAt === null ? '—' : formatTime(r.lastUploadAt)}</TableCell>
            </TableRow>
          ))}
          {repositories.length === 0 ? (
            <TableRow>
              <TableCell colSpan={6}>
                <Typography variant="body2">You may not list any repository.</Typography>
              </TableCell>
            </TableRow>
          ) : null}
        </TableBody>
      </Table>
    </TableContainer>
  );
}
