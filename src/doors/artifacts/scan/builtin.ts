import type { Clock } from '#core/app';
import { GatewayError, isGatewayError } from '#core/errors';
import { ECOSYSTEMS, type Ecosystem, type VulnerabilitySource } from '#core/policy';
import { ScanBudget, type ScanLimits } from './limits.ts';
import type { FoundPackage } from './manifests.ts';
import type { Finding, ScanOutcome, Scanner, ScanTarget } from './port.ts';
import { cycloneDxSbom, trivyReport } from './report.ts';
import { walkArtifact, WalkState } from './walker.ts';

const obj = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Layer order of an image tarball: docker-save `manifest.json`, or an OCI layout's index. */
export function layerOrder(images: ReadonlyMap<string, unknown>): string[] | undefined {
  const docker = images.get('manifest.json');
  if (Array.isArray(docker)) {
    const layers = list(obj(docker[0])['Layers']).filter((l): l is string => typeof l === 'string');
    if (layers.length > 0) return layers;
  }
  const index = images.get('index.json');
  const digest = str(obj(list(obj(index)['manifests'])[0])['digest']);
  if (!digest.startsWith('sha256:')) return undefined;
  const manifest = images.get(`blobs/sha256/${digest.slice(7)}`);
  const layers = list(obj(manifest)['layers']).map((l) => str(obj(l)['digest']));
  return layers.filter((d) => d.startsWith('sha256:')).map((d) => `blobs/sha256/${d.slice(7)}`);
}

/**
 * Applies image layers in order (OCI image spec, "Representing Changes"): a `.wh.<name>` file
 * deletes `<name>` from lower layers, a `.wh..wh..opq` file empties its directory; packages of
 * files deleted this way are not in the image and are not reported.
 */
export function applyLayers(state: WalkState): FoundPackage[] {
  const loose = state.found.filter((f) => f.layer === undefined).map((f) => f.pkg);
  const order = layerOrder(state.imageJson);
  const layered = state.found.filter((f) => f.layer !== undefined);
  if (order === undefined) return [...loose, ...layered.map((f) => f.pkg)];
  let fs = new Map<string, FoundPackage[]>();
  for (const layer of order) {
    for (const wh of state.whiteouts.get(layer) ?? []) {
      const dir = wh.includes('/') ? wh.slice(0, wh.lastIndexOf('/') + 1) : '';
      const base = wh.slice(dir.length);
      const gone = base === '.wh..wh..opq' ? dir : `${dir}${base.slice(4)}`;
      fs = new Map(
        [...fs].filter(
          ([path]) => !(path === gone || path.startsWith(gone.endsWith('/') ? gone : `${gone}/`)),
        ),
      );
    }
    for (const f of layered.filter((x) => x.layer === layer)) {
      const key = f.layerPath ?? '';
      fs.set(key, [...(fs.get(key) ?? []), f.pkg]);
    }
  }
  return [...loose, ...[...fs.values()].flat()];
}

/** Archive problems end the walk but not the scan; they go into the report and block at the gate. */
const ARCHIVE_CODES: ReadonlySet<string> = new Set([
  'GW_ERR_ARTIFACTS_ARCHIVE_LIMIT',
  'GW_ERR_ARTIFACTS_ARCHIVE_INVALID',
]);

function dedupe(packages: readonly FoundPackage[]): FoundPackage[] {
  return [
    ...new Map(packages.map((p) => [`${p.ecosystem}\0${p.name}\0${p.version}\0${p.path}`, p])).values(),
  ];
}

/** Matches packages against the vulnerability source (core/vulndb). */
async function match(
  packages: readonly FoundPackage[],
  source: VulnerabilitySource | undefined,
  signal?: AbortSignal,
): Promise<{ findings: Finding[]; updatedAt?: number }> {
  const findings: Finding[] = [];
  let updatedAt: number | undefined;
  if (source === undefined) return { findings };
  for (const pkg of packages) {
    if (!(ECOSYSTEMS as readonly string[]).includes(pkg.ecosystem)) continue;
    const facts = await source.forPackage(pkg.ecosystem as Ecosystem, pkg.name, signal);
    if (facts.updatedAt !== undefined) updatedAt = Math.max(updatedAt ?? 0, facts.updatedAt);
    if (!facts.available) continue;
    for (const advisory of facts.affecting(pkg.version)) findings.push({ pkg, advisory });
  }
  return updatedAt === undefined ? { findings } : { findings, updatedAt };
}

/** Longest one built-in scan may take by default; it stays well inside the queue's job lease. */
const DEFAULT_SCAN_TIMEOUT_MS = 5 * 60_000;

/** A promise that rejects with the signal's reason once it aborts. */
function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** Creates the built-in scanner. */
export function createBuiltinScanner(options: {
  readonly limits: () => ScanLimits;
  readonly vulnerabilities?: VulnerabilitySource;
  readonly clock: Clock;
  /** Longest one scan may take (default DEFAULT_SCAN_TIMEOUT_MS); past it the scan fails. */
  readonly timeoutMs?: () => number;
}): Scanner {
  async function run(target: ScanTarget, signal: AbortSignal): Promise<ScanOutcome> {
    const state = new WalkState(new ScanBudget(options.limits(), signal));
    try {
      await walkArtifact(state, target.fileName, target.access, () => target.open());
    } catch (error) {
      // Limits and malformed archives end the walk; what they say goes in the report and the
      // gate blocks on it. Anything else (the deadline too) is a scanner failure and is retried.
      if (!isGatewayError(error) || !ARCHIVE_CODES.has(error.code) || signal.aborted) throw error;
      state.problems.push({
        path: str(error.details['path']) || target.fileName,
        code: error.code,
        message: error.message,
      });
    }
    const packages = dedupe(applyLayers(state));
    const { findings, updatedAt } = await match(packages, options.vulnerabilities, signal);
    const now = options.clock.now();
    return {
      scanner: 'gatehouse',
      packages,
      findings,
      problems: state.problems,
      ...(updatedAt === undefined ? {} : { databaseUpdatedAt: updatedAt }),
      report: trivyReport(target, packages, findings, state.problems, now, updatedAt),
      sbom: cycloneDxSbom(target, packages, findings, now),
    };
  }

  return {
    name: 'gatehouse',
    /**
     * Scans within a deadline. Past it (or when `signal` aborts at shutdown) the scan fails at
     * once, so the queue retries it later and scans other artifacts meanwhile; the walk sees the
     * abort at its next chunk or entry and stops, closing what it reads.
     */
    async scan(target: ScanTarget, signal?: AbortSignal): Promise<ScanOutcome> {
      const timeoutMs = options.timeoutMs?.() ?? DEFAULT_SCAN_TIMEOUT_MS;
      const deadline = new AbortController();
      const timer = setTimeout(() => {
        deadline.abort(
          new GatewayError('GW_ERR_INTERNAL', {
            message: `The built-in scan of "${target.fileName}" did not finish within ${timeoutMs} ms`,
          }),
        );
      }, timeoutMs);
      const stop = (): void =>
        deadline.abort(
          new GatewayError('GW_ERR_INTERNAL', {
            message: 'The scan was stopped: the gateway is shutting down',
          }),
        );
      if (signal?.aborted === true) stop();
      signal?.addEventListener('abort', stop, { once: true });
      try {
        return await Promise.race([run(target, deadline.signal), rejectOnAbort(deadline.signal)]);
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', stop);
      }
    },
  };
}
