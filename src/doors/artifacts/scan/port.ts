import type { AdvisorySummary } from '#core/vulndb';
import type { FoundPackage } from './manifests.ts';
import type { ScanProblem } from './walker.ts';
import type { RandomAccess } from './zip.ts';

/** The artifact a scanner looks at. */
export interface ScanTarget {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly fileName: string;
  readonly sha256: string;
  readonly size: number;
  /** Random access to the plaintext (decrypts only the segments a read needs). */
  readonly access: RandomAccess;
  /** The whole plaintext as a stream. */
  open(): Promise<AsyncIterable<Buffer>>;
}

/** One vulnerability of one package. */
export interface Finding {
  readonly pkg: FoundPackage;
  readonly advisory: AdvisorySummary;
}

/** What a scan produced: packages, vulnerabilities, problems and the two report documents. */
export interface ScanOutcome {
  readonly scanner: string;
  readonly packages: readonly FoundPackage[];
  readonly findings: readonly Finding[];
  /** Problems inside the artifact; limit and traversal problems make the gate block. */
  readonly problems: readonly ScanProblem[];
  /** When the vulnerability database was last updated (epoch ms), if it answered. */
  readonly databaseUpdatedAt?: number;
  /** The report in Trivy's JSON shape (SchemaVersion 2). */
  readonly report: Record<string, unknown>;
  /** A CycloneDX 1.5 JSON SBOM. */
  readonly sbom: Record<string, unknown>;
}

/** A scanner: the built-in one or an adapter to an external tool. */
export interface Scanner {
  readonly name: string;
  scan(target: ScanTarget, signal?: AbortSignal): Promise<ScanOutcome>;
}
