import { render, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { ScanReport } from '../api/types.ts';
import { formatTime, localZoneName } from '../lib/format.ts';
import { ScanReportView, severityCounts } from './scan-report.tsx';

const REPORT: ScanReport = {
  CreatedAt: '2026-01-02T03:04:05Z',
  Results: [
    {
      Target: 'package-lock.json',
      Packages: [
        { Name: 'lodash', Version: '4.17.20' },
        { Name: 'minimist', Version: '1.2.0' },
      ],
      Vulnerabilities: [
        { VulnerabilityID: 'GHSA-low', PkgName: 'minimist', InstalledVersion: '1.2.0', Severity: 'LOW' },
        {
          VulnerabilityID: 'CVE-2021-23337',
          PkgName: 'lodash',
          InstalledVersion: '4.17.20',
          FixedVersion: '4.17.21',
          Severity: 'HIGH',
          PrimaryURL: 'https://advisories.example.test/CVE-2021-23337',
          Title: 'Command injection',
        },
        {
          VulnerabilityID: 'X-1',
          PkgName: 'lodash',
          InstalledVersion: '4.17.20',
          Severity: 'weird',
          References: ['javascript:alert(1)'],
        },
      ],
    },
  ],
};

describe('ScanReportView', () => {
  it('counts severities, unknown ones included', () => {
    expect(severityCounts(REPORT)).toEqual({ CRITICAL: 0, HIGH: 1, MEDIUM: 0, LOW: 1, UNKNOWN: 1 });
  });

  it('lists each vulnerability, most severe first, with package, versions and link', () => {
    render(<ScanReportView report={REPORT} />);
    const rows = within(screen.getByRole('table', { name: 'Vulnerabilities' }))
      .getAllByRole('row')
      .slice(1);
    expect(rows.map((r) => within(r).getAllByRole('cell')[0]?.textContent)).toEqual([
      'CVE-2021-23337',
      'GHSA-low',
      'X-1',
    ]);
    const first = rows[0];
    if (first === undefined) throw new Error('no row');
    expect(
      within(first)
        .getAllByRole('cell')
        .map((c) => c.textContent),
    ).toEqual(['CVE-2021-23337', 'high', 'lodash', '4.17.20', '4.17.21', 'Command injection']);
    expect(within(first).getByRole('link')).toHaveAttribute(
      'href',
      'https://advisories.example.test/CVE-2021-23337',
    );
    // Only https links are rendered; a javascript: reference is shown as text.
    expect(within(rows[2] as HTMLElement).queryByRole('link')).toBeNull();
    // The scan time names its zone, as every time in the console does.
    expect(screen.getByText(/2 packages found/)).toHaveTextContent(
      `scanned ${formatTime(REPORT.CreatedAt)}.`,
    );
    expect(screen.getByText(/2 packages found/)).toHaveTextContent(localZoneName());
    expect(screen.getByText('high: 1')).toBeInTheDocument();
  });

  it('says so when nothing is vulnerable', () => {
    render(<ScanReportView report={{ Results: [{ Target: 'x', Packages: [] }] }} />);
    expect(screen.getByText('No known vulnerabilities.')).toBeInTheDocument();
  });
});
