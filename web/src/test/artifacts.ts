import { type Handler, json } from './fake-server.ts';

/** An artifact as the API lists it: `pkg-<i>`, approved for 1, quarantined otherwise. */
export const artifact = (i: number) => ({
  id: `00000000-0000-4000-8000-00000000000${i}`,
  repository: 'default',
  name: `pkg-${i}`,
  version: '1.0.0',
  sha256: 'ab'.repeat(32),
  size: 1024 * i,
  mediaType: 'application/gzip',
  fileName: `pkg-${i}.tgz`,
  status: i === 1 ? 'approved' : 'quarantined',
  statusReason: null,
  statusBy: null,
  policyVersion: null,
  scanState: 'done',
  scannedAt: null,
  uploadedBy: 'user:1',
  createdAt: '2026-01-01T00:00:00Z',
});

/** What the artifact page asks besides the artifact itself: an empty report, no signature, trusted. */
export function detailRoutes(a: ReturnType<typeof artifact>): Record<string, Handler> {
  return {
    [`GET /api/artifacts/${a.id}/scan-results`]: () =>
      json({ SchemaVersion: 2, ArtifactName: a.name, Results: [] }),
    [`GET /api/artifacts/${a.id}/signatures`]: () => json({ signatures: [] }),
    [`GET /api/artifacts/${a.id}/verification`]: () =>
      json({ id: a.id, sha256: a.sha256, trusted: true, reasons: [], policyVersion: 'p', validUntil: '' }),
  };
}
