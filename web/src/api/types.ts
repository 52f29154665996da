/** Shapes of the server's answers the console reads. */

export type ArtifactStatus = 'quarantined' | 'approved' | 'blocked';

export interface Artifact {
  readonly id: string;
  readonly repository: string;
  readonly name: string;
  readonly version: string;
  readonly sha256: string;
  readonly size: number;
  readonly mediaType: string;
  readonly fileName: string;
  readonly status: ArtifactStatus;
  readonly statusReason: string | null;
  readonly statusBy: string | null;
  readonly policyVersion: string | null;
  readonly scanState: string;
  readonly scannedAt: string | null;
  readonly uploadedBy: string;
  readonly createdAt: string;
  readonly deduplicated?: boolean;
}

export interface ArtifactPage {
  readonly items: Artifact[];
  readonly total: number;
}

/** One repository of `GET /api/artifacts/-/repositories`. */
export interface Repository {
  readonly name: string;
  readonly artifacts: number;
  readonly size: number;
  /** Bytes; 0 means unlimited. */
  readonly quota: number;
  readonly approved: number;
  readonly quarantined: number;
  readonly blocked: number;
  readonly lastUploadAt: string | null;
}

/** One vulnerability of a scan report (Trivy's JSON shape). */
export interface ScanVulnerability {
  readonly VulnerabilityID: string;
  readonly PkgName: string;
  readonly InstalledVersion: string;
  readonly FixedVersion?: string;
  readonly Severity: string;
  readonly Title?: string;
  readonly PrimaryURL?: string;
  readonly References?: string[];
}

export interface ScanReport {
  readonly CreatedAt?: string;
  readonly Metadata?: { readonly DatabaseUpdatedAt?: string | null };
  readonly Results?: {
    readonly Target: string;
    readonly Type?: string;
    readonly Packages?: { Name: string; Version: string }[];
    readonly Vulnerabilities?: ScanVulnerability[];
  }[];
  readonly Problems?: { Target: string; Code: string; Message: string }[];
}

export interface Signature {
  readonly id: string;
  readonly kind: string;
  readonly identity: string;
  readonly createdBy: string;
  readonly createdAt: string;
}

export interface Verification {
  readonly trusted: boolean;
  /** Who vouched, as the trust check verified it: `key:<id>` or `cert:<subject>`. */
  readonly signer?: string;
  readonly reasons: string[];
  readonly policyVersion?: string;
  readonly validUntil?: string;
  readonly [key: string]: unknown;
}

export type AuditDecision = 'allow' | 'deny' | 'error' | 'info';

export interface AuditEvent {
  readonly seq: number;
  readonly time: string;
  readonly actor: string;
  readonly action: string;
  readonly resource: string;
  readonly decision: AuditDecision;
  readonly reason?: string;
  readonly requestId?: string;
  readonly clientIp?: string;
  readonly details?: Record<string, unknown>;
  readonly hash: string;
  readonly prevHash: string;
}

export interface AuditPage {
  readonly events: AuditEvent[];
  readonly nextCursor?: string;
}

export interface AuditVerification {
  readonly ok: boolean;
  readonly checked: number;
  readonly firstBad?: { seq: number; problem: string };
}

export interface RuleEvaluation {
  readonly ruleId: string;
  readonly ruleName: string;
  readonly outcome: 'allow' | 'deny' | 'warn';
  readonly reason: string;
  readonly error?: string;
  readonly allowAt?: number;
}

export interface PolicyTestAnswer {
  readonly found: boolean;
  readonly decision: {
    readonly allowed: boolean;
    readonly outcome: string;
    readonly reason: string;
    readonly policyVersion: string;
    readonly results: RuleEvaluation[];
    readonly allowAt?: number;
  };
}

/** Picks the list out of `[...]` or `{ <key>: [...] }`, whichever the endpoint answers. */
export function listOf<T>(raw: unknown, key: string): T[] {
  if (Array.isArray(raw)) return raw as T[];
  if (typeof raw === 'object' && raw !== null) {
    const inner = (raw as Record<string, unknown>)[key];
    if (Array.isArray(inner)) return inner as T[];
    const items = (raw as Record<string, unknown>)['items'];
    if (Array.isArray(items)) return items as T[];
  }
  return [];
}
