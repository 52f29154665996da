import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One entry of a result's `Packages`, as Trivy prints an npm lockfile package. */
function npmPackage(name: string, version: string, uid: string, line: number): Record<string, unknown> {
  return {
    ID: `${name}@${version}`,
    Name: name,
    Identifier: { PURL: `pkg:npm/${name}@${version}`, UID: uid },
    Version: version,
    Licenses: ['MIT'],
    Locations: [{ StartLine: line, EndLine: line + 5 }],
  };
}

/**
 * A report as `trivy fs --format json --list-all-pkgs` prints it (SchemaVersion 2): the field
 * names, nesting and value forms of Trivy's own output, for one npm lockfile with one package
 * and one advisory.
 */
export function trivyReport(artifactName: string): Record<string, unknown> {
  return {
    SchemaVersion: 2,
    CreatedAt: '2026-11-30T09:12:44.318207551Z',
    ArtifactName: artifactName,
    ArtifactType: 'filesystem',
    Results: [
      {
        Target: 'package-lock.json',
        Class: 'lang-pkgs',
        Type: 'npm',
        Packages: [
          npmPackage('lodash', '4.17.20', '3c7d9a41e2b8f016', 6),
          npmPackage('ms', '2.1.3', '8e14b0c5d2a97f33', 12),
        ],
        Vulnerabilities: [
          {
            VulnerabilityID: 'CVE-2021-23337',
            PkgID: 'lodash@4.17.20',
            PkgName: 'lodash',
            PkgIdentifier: { PURL: 'pkg:npm/lodash@4.17.20', UID: '3c7d9a41e2b8f016' },
            InstalledVersion: '4.17.20',
            FixedVersion: '4.17.21',
            Status: 'fixed',
            SeveritySource: 'ghsa',
            DataSource: { ID: 'ghsa', Name: 'GitHub Security Advisory npm' },
            Title: 'lodash: command injection via template',
            Description:
              'Lodash versions prior to 4.17.21 are vulnerable to Command Injection via the template function.',
            Severity: 'HIGH',
            CweIDs: ['CWE-94'],
            VendorSeverity: { ghsa: 3, nvd: 3 },
            CVSS: { ghsa: { V3Vector: 'CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H', V3Score: 7.2 } },
            PublishedDate: '2021-02-15T13:15:00Z',
            LastModifiedDate: '2024-11-21T05:51:00Z',
          },
        ],
      },
    ],
  };
}

/** What `trivy --version --format json` prints. */
export function trivyVersion(updatedAt: string): Record<string, unknown> {
  return {
    Version: '0.58.1',
    VulnerabilityDB: {
      Version: 2,
      NextUpdate: '2026-11-30T12:00:00Z',
      UpdatedAt: updatedAt,
      DownloadedAt: '2026-11-30T07:03:10.412Z',
    },
  };
}

/** How the fake behaves on a scan: answer, fail like Trivy does, print junk, or hang. */
export type FakeTrivyMode = 'ok' | 'fail' | 'garbage' | 'hang';

/** A folder holding an executable `trivy` for tests, and the files it reads and writes. */
export interface FakeTrivy {
  readonly dir: string;
  readonly command: string;
  setMode(mode: FakeTrivyMode): void;
}

const SCRIPT = `#!/bin/sh
# A stand-in for trivy, written by a test: it answers from the files beside it.
here=$(dirname "$0")
if [ "$1" = "--version" ]; then
  if [ "$2" = "--format" ]; then exec cat "$here/version.json"; fi
  echo "Version: 0.58.1"
  exit 0
fi
for last in "$@"; do :; done
printf '%s\\n' "$@" > "$here/args"
sha256sum "$last" | cut -d' ' -f1 > "$here/input.sha256"
stat -c %a "$last" > "$here/input.mode"
case "$(cat "$here/mode")" in
  ok) exec cat "$here/report.json" ;;
  fail)
    printf '2026-11-30T09:12:44Z\\tFATAL\\tFatal error\\trun error: init error: DB error: failed to open the vulnerability DB\\n' >&2
    exit 1 ;;
  garbage) echo "panic: runtime error: index out of range"; exit 0 ;;
  hang) exec sleep 600 ;;
esac
`;

/** Writes a fake `trivy` that prints `report` for scans and `version` for `--version --format json`. */
export function writeFakeTrivy(report: Record<string, unknown>, version: Record<string, unknown>): FakeTrivy {
  const dir = mkdtempSync(join(tmpdir(), 'gh-fake-trivy-'));
  const command = join(dir, 'trivy');
  writeFileSync(command, SCRIPT);
  chmodSync(command, 0o755);
  writeFileSync(join(dir, 'report.json'), JSON.stringify(report, null, 2));
  writeFileSync(join(dir, 'version.json'), JSON.stringify(version));
  writeFileSync(join(dir, 'mode'), 'ok');
  return { dir, command, setMode: (mode) => writeFileSync(join(dir, 'mode'), mode) };
}
