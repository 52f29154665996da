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

/** True when `command` (a `trivy` binary, looked up on PATH) answers `--version`. */
export function trivyAvailable(command = 'trivy'): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

/** Every scan: JSON with all packages, and never a network call (no database update, offline). */
export const TRIVY_COMMON_ARGS = [
  '--quiet',
  '--format',
  'json',
  '--list-all-pkgs',
  '--skip-db-update',
  '--offline-scan',
] as const;

/** How the adapter finds and bounds Trivy. */
export interface TrivyOptions {
  /** The executable (default `trivy`, looked up on PATH). */
  readonly command?: string;
  /** Longest one run may take, in milliseconds (read per run, so reloads apply). */
  readonly timeoutMs?: () => number;
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

function trivyFailed(message: string, stderr = ''): GatewayError {
  // Trivy prints its reason last ("FATAL ..."); the last lines are what an operator needs.
  const tail = stderr.trim().split('\n').slice(-3).join(' | ').slice(0, 500);
  return new GatewayError('GW_ERR_INTERNAL', {
    message: tail === '' ? message : `${message}: ${tail}`,
    ...(stderr === '' ? {} : { cause: new Error(stderr) }),
  });
}

function run(
  command: string,
  args: readonly string[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      [...args],
      {
        maxBuffer: 256 * 1024 * 1024,
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        ...(signal === undefined ? {} : { signal }),
      },
      (error, stdout, stderr) => {
        if (error === null) return resolve(stdout);
        const e = error as NodeJS.ErrnoException & { killed?: boolean; code?: unknown };
        if (e.code === 'ENOENT')
          return reject(trivyFailed(`Trivy is not installed ("${command}" not found)`));
        if (signal?.aborted === true)
          return reject(trivyFailed('Trivy was stopped: the gateway is shutting down'));
        if (e.killed === true)
          return reject(trivyFailed(`Trivy did not finish within ${timeoutMs} ms and was killed`, stderr));
        reject(trivyFailed(`Trivy exited with status ${String(e.code ?? 'unknown')}`, stderr));
      },
    );
  });
}

/** Parses what Trivy printed; anything but a SchemaVersion 2 report is a failed scan. */
function parseReport(out: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(out);
  } catch {
    throw trivyFailed(`Trivy printed ${out.length} bytes that are not JSON`);
  }
  const report = obj(parsed);
  if (report['SchemaVersion'] !== 2)
    throw trivyFailed(
      `Trivy printed a report with SchemaVersion "${String(report['SchemaVersion'])}", not 2`,
    );
  return report;
}

/**
 * The Trivy adapter: writes the plaintext to a private temporary file and runs `trivy` offline
 * (`--skip-db-update --offline-scan`), as `image --input` for image tarballs and `fs` otherwise.
 */
export function createTrivyScanner(clock: Clock, options: TrivyOptions = {}): Scanner {
  const command = options.command ?? 'trivy';
  const timeoutMs = options.timeoutMs ?? (() => 15 * 60_000);
  return {
    name: 'trivy',
    async scan(target: ScanTarget, signal?: AbortSignal): Promise<ScanOutcome> {
      const dir = await mkdtemp(join(tmpdir(), 'gh-trivy-'));
      try {
        const file = join(dir, target.fileName.replace(/[^A-Za-z0-9._-]/g, '_'));
        await pipeline(await target.open(), createWriteStream(file, { mode: 0o600 }));
        const common = TRIVY_COMMON_ARGS;
        const isImage = target.fileName.endsWith('.tar');
        const out = await run(
          command,
          isImage ? ['image', ...common, '--input', file] : ['fs', ...common, file],
          timeoutMs(),
          signal,
        );
        const report = parseReport(out);
        // The database age goes into the report; a version answer without it leaves the age unknown.
        let version: Record<string, unknown> = {};
        try {
          version = obj(JSON.parse(await run(command, ['--version', '--format', 'json'], 10_000, signal)));
        } catch (error) {
          if (!(error instanceof SyntaxError)) throw error;
        }
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
