import { execFile, spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Clock } from '#core/app';
import { GatewayError } from '#core/errors';
import type { AdvisorySummary, Severity } from '#core/vulndb';
import { type FoundPackage, fromPurl } from './manifests.ts';
import type { Finding, ScanOutcome, Scanner, ScanTarget } from './port.ts';
import { cycloneDxSbom } from './report.ts';

/** True when a `trivy` binary is on PATH. */
export function trivyAvailable(): boolean {
  return spawnSync('trivy', ['--version'], { stdio: 'ignore' }).status === 0;
}

const obj = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

const SEVERITY: Record<string, Severity | 'unknown'> = {
  CRITICAL: 'critical',
  HIGH: 'high',
  MEDIUM: 'medium',
  LOW: 'low',
};

/** Maps Trivy's JSON report (SchemaVersion 2) to packages and findings. */
export function fromTrivyReport(report: Record<string, unknown>): {
  packages: FoundPackage[];
  findings: Finding[];
} {
  const packages: FoundPackage[] = [];
  const findings: Finding[] = [];
  for (const result of list(report['Results'])) {
    const target = str(obj(result)['Target']);
    const byName = new Map<string, FoundPackage>();
    for (const p of list(obj(result)['Packages'])) {
      const found = fromPurl(str(obj(obj(p)['Identifier'])['PURL']), target);
      if (found !== undefined) {
        packages.push(found);
        byName.set(`${str(obj(p)['Name'])}@${str(obj(p)['Version'])}`, found);
      }
    }
    for (const v of list(obj(result)['Vulnerabilities'])) {
      const name = str(obj(v)['PkgName']);
      const version = str(obj(v)['InstalledVersion']);
      const pkg = byName.get(`${name}@${version}`) ?? {
        ecosystem: 'npm' as const,
        name,
        version,
        path: target,
      };
      const advisory: AdvisorySummary = {
        id: str(obj(v)['VulnerabilityID']),
        aliases: [],
        summary: str(obj(v)['Title']),
        severity: SEVERITY[str(obj(v)['Severity'])] ?? 'unknown',
        vectors: [],
        modified: str(obj(v)['LastModifiedDate']),
      };
      findings.push({ pkg, advisory });
    }
  }
  return { packages, findings };
}

function run(args: readonly string[], signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'trivy',
      [...args],
      { maxBuffer: 256 * 1024 * 1024, ...(signal === undefined ? {} : { signal }) },
      (error, stdout, stderr) => {
        if (error !== null) {
          reject(
            new GatewayError('GW_ERR_INTERNAL', {
              message: 'Trivy failed',
              cause: new Error(stderr || error.message),
            }),
          );
        } else resolve(stdout);
      },
    );
  });
}

/**
 * The Trivy adapter: writes the plaintext to a private temporary file and runs `trivy` offline
 * (`--skip-db-update --offline-scan`), as `image --input` for image tarballs and `fs` otherwise.
 */
export function createTrivyScanner(clock: Clock): Scanner {
  return {
    name: 'trivy',
    async scan(target: ScanTarget, signal?: AbortSignal): Promise<ScanOutcome> {
      const dir = await mkdtemp(join(tmpdir(), 'gh-trivy-'));
      try {
        const file = join(dir, target.fileName.replace(/[^A-Za-z0-9._-]/g, '_'));
        await pipeline(await target.open(), createWriteStream(file, { mode: 0o600 }));
        const common = [
          '--quiet',
          '--format',
          'json',
          '--list-all-pkgs',
          '--skip-db-update',
          '--offline-scan',
        ];
        const isImage = target.fileName.endsWith('.tar');
        const out = await run(
          isImage ? ['image', ...common, '--input', file] : ['fs', ...common, file],
          signal,
        );
        const report = obj(JSON.parse(out));
        const version = obj(JSON.parse(await run(['--version', '--format', 'json'], signal)));
        const updated = Date.parse(str(obj(version['VulnerabilityDB'])['UpdatedAt']));
        const { packages, findings } = fromTrivyReport(report);
        return {
          scanner: 'trivy',
          packages,
          findings,
          problems: [],
          ...(Number.isNaN(updated) ? {} : { databaseUpdatedAt: updated }),
          report,
          sbom: cycloneDxSbom(target, packages, findings, clock.now()),
        };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
