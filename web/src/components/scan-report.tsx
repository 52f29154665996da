import { Box, Chip, Link, Table, TableBody, TableCell, TableHead, TableRow, Typography } from '@mui/material';
import type { ScanReport, ScanVulnerability } from '../api/types.ts';
import { formatTime } from '../lib/format.ts';

export const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'] as const;

/** Every vulnerability of every result, most severe first. */
export function vulnerabilitiesOf(report: ScanReport): ScanVulnerability[] {
  const rank = (s: string) => {
    const i = (SEVERITIES as readonly string[]).indexOf(s.toUpperCase());
    return i === -1 ? SEVERITIES.length : i;
  };
  return (report.Results ?? [])
    .flatMap((r) => r.Vulnerabilities ?? [])
    .sort(
      (a, b) => rank(a.Severity) - rank(b.Severity) || a.VulnerabilityID.localeCompare(b.VulnerabilityID),
    );
}

export function severityCounts(report: ScanReport): Record<(typeof SEVERITIES)[number], number> {
  const counts = { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };
  for (const v of vulnerabilitiesOf(report)) {
    const s = v.Severity.toUpperCase();
    if (s in counts) counts[s as keyof typeof counts]++;
    else counts.UNKNOWN++;
  }
  return counts;
}

function linkOf(v: ScanVulnerability): string | undefined {
  const candidates = [v.PrimaryURL, ...(v.References ?? [])];
  return candidates.find((u): u is string => typeof u === 'string' && /^https:\/\//.test(u));
}

const COLOR = {
  CRITICAL: 'error',
  HIGH: 'error',
  MEDIUM: 'warning',
  LOW: 'info',
  UNKNOWN: 'default',
} as const;

/** Severity counts, then one row per vulnerability. */
export function ScanReportView({ report }: { report: ScanReport }) {
  const counts = severityCounts(report);
  const vulns = vulnerabilitiesOf(report);
  const packages = (report.Results ?? []).reduce((n, r) => n + (r.Packages?.length ?? 0), 0);
  return (
    <Box>
      <Box sx={{ display: 'flex', gap: 1, flexWrap: 'wrap', mb: 1 }} aria-label="Severity counts">
        {SEVERITIES.map((s) => (
          <Chip
            key={s}
            label={`${s.toLowerCase()}: ${counts[s]}`}
            color={counts[s] > 0 ? COLOR[s] : 'default'}
            variant={counts[s] > 0 ? 'filled' : 'outlined'}
            size="small"
          />
        ))}
      </Box>
      <Typography variant="body2" sx={{ mb: 1 }}>
        {packages} packages found
        {report.CreatedAt === undefined ? '' : `, scanned ${formatTime(report.CreatedAt)}`}.
      </Typography>
      {vulns.length === 0 ? (
        <Typography variant="body2">No known vulnerabilities.</Typography>
      ) : (
        <Box sx={{ overflowX: 'auto' }}>
          <Table size="small" aria-label="Vulnerabilities">
            <TableHead>
              <TableRow>
                <TableCell>Id</TableCell>
                <TableCell>Severity</TableCell>
                <TableCell>Package</TableCell>
                <TableCell>Installed</TableCell>
                <TableCell>Fixed in</TableCell>
                <TableCell>Title</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {vulns.map((v) => {
                const href = linkOf(v);
                return (
                  <TableRow key={`${v.VulnerabilityID}:${v.PkgName}:${v.InstalledVersion}`}>
                    <TableCell>
                      {href === undefined ? (
                        v.VulnerabilityID
                      ) : (
                        <Link href={href} target="_blank" rel="noopener noreferrer">
                          {v.VulnerabilityID}
                        </Link>
                      )}
                    </TableCell>
                    <TableCell>{v.Severity.toLowerCase()}</TableCell>
                    <TableCell>{v.PkgName}</TableCell>
                    <TableCell>{v.InstalledVersion}</TableCell>
                    <TableCell>{v.FixedVersion ?? '—'}</TableCell>
                    <TableCell>{v.Title ?? ''}</TableCell>
                  </TableRow>
                );
              })}
            </TableBody>
          </Table>
        </Box>
      )}
      {(report.Problems ?? []).length > 0 ? (
        <Typography variant="body2" color="warning.main" sx={{ mt: 1 }}>
          The scanner could not read:{' '}
          {(report.Problems ?? []).map((p) => `${p.Target} (${p.Message})`).join('; ')}
        </Typography>
      ) : null}
    </Box>
  );
}
