import { GatewayError } from '#core/errors';

/** Limits of one scan; exceeding any is an archive bomb and ends the scan. */
export interface ScanLimits {
  readonly maxEntries: number;
  readonly maxExpandedSize: number;
  readonly maxDepth: number;
  readonly maxRatio: number;
  /** Largest single file read into memory (a manifest or a nested archive). */
  readonly maxBufferedFile: number;
}

/** Counts entries and expanded bytes across the whole archive tree of one artifact. */
export class ScanBudget {
  readonly limits: ScanLimits;
  /** Aborts the walk (the scan's deadline, or shutdown): every count below checks it. */
  readonly signal: AbortSignal | undefined;
  entries = 0;
  expanded = 0;
  constructor(limits: ScanLimits, signal?: AbortSignal) {
    this.limits = limits;
    this.signal = signal;
  }

  entry(path: string): void {
    this.signal?.throwIfAborted();
    this.entries += 1;
    if (this.entries > this.limits.maxEntries) {
      throw archiveLimit(`Archive has more than ${this.limits.maxEntries} entries`, {
        path,
        limit: 'entries',
      });
    }
  }

  bytes(n: number, path: string): void {
    this.signal?.throwIfAborted();
    this.expanded += n;
    if (this.expanded > this.limits.maxExpandedSize) {
      throw archiveLimit(`Archive expands beyond ${this.limits.maxExpandedSize} bytes`, {
        path,
        limit: 'expandedSize',
      });
    }
  }

  depth(depth: number, path: string): void {
    if (depth > this.limits.maxDepth) {
      throw archiveLimit(`Archives nest deeper than ${this.limits.maxDepth} levels`, {
        path,
        limit: 'depth',
      });
    }
  }

  /** Checks the expansion ratio of one compressed stream so far. */
  ratio(compressed: number, expanded: number, path: string): void {
    this.signal?.throwIfAborted();
    // The 1 MiB allowance keeps tiny, highly compressible files (zeros, text) from tripping it.
    if (expanded > 1024 * 1024 && expanded > compressed * this.limits.maxRatio) {
      throw archiveLimit(`Entry "${path}" expands more than ${this.limits.maxRatio} times`, {
        path,
        limit: 'ratio',
      });
    }
  }
}

/** An archive-bomb error. */
export function archiveLimit(message: string, details: Record<string, unknown>): GatewayError {
  return new GatewayError('GW_ERR_ARTIFACTS_ARCHIVE_LIMIT', { message, details });
}

/** A malformed-archive error. */
export function archiveInvalid(message: string, details: Record<string, unknown> = {}): GatewayError {
  return new GatewayError('GW_ERR_ARTIFACTS_ARCHIVE_INVALID', { message, details });
}

/** True for names that would escape an extraction folder (absolute, `..` segments, drive letters). */
export function isTraversal(name: string): boolean {
  const n = name.replace(/\\/g, '/');
  return n.startsWith('/') || /^[A-Za-z]:/.test(n) || n.split('/').includes('..');
}
