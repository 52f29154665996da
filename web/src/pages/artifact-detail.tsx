import { Alert, Box, Button, Card, CardContent, Stack, Typography } from '@mui/material';
import { useEffect, useState } from 'react';
import { useParams } from 'react-router';
import { ApiError } from '../api/problem.ts';
import type { Artifact, ScanReport, Signature, Verification } from '../api/types.ts';
import { useAuth } from '../auth/auth-context.tsx';
import { ErrorAlert } from '../components/error-alert.tsx';
import { OverrideForm } from '../components/override-form.tsx';
import { Page } from '../components/page.tsx';
import { ScanReportView } from '../components/scan-report.tsx';
import { StatusChip } from '../components/status-chip.tsx';
import { downloadArtifact, downloadThrough } from '../lib/download.ts';
import { formatBytes, formatTime } from '../lib/format.ts';
import { useApi } from '../lib/use-api.ts';
import { useSubmit } from '../lib/use-submit.ts';

/** While a scan runs, the page polls this often so the verdict appears without a reload. */
export const POLL_MS = 1500;

interface Detail {
  readonly artifact: Artifact;
  readonly report: ScanReport | undefined;
  readonly signatures: Signature[];
  readonly verification: Verification | undefined;
}

/** Quarantined means "until scanned": keep polling until a verdict or a final scan failure. */
const pendingScan = (a: Artifact) => a.status === 'quarantined' && a.scanState !== 'failed';

function Field({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <Box sx={{ display: 'grid', gridTemplateColumns: { xs: '1fr', sm: '160px 1fr' }, gap: 1, py: 0.5 }}>
      <Typography variant="body2" color="text.secondary" component="dt">
        {label}
      </Typography>
      <Typography variant="body2" component="dd" sx={{ m: 0, overflowWrap: 'anywhere' }}>
        {children}
      </Typography>
    </Box>
  );
}

export function ArtifactDetailPage() {
  const { id = '' } = useParams();
  const { client, can } = useAuth();
  const [tick, setTick] = useState(0);
  // One action at a time: a double click on Scan again asks for one scan, not two.
  const action = useSubmit();
  const [doing, setDoing] = useState<string | undefined>(undefined);
  // A download the browser did not start is heard of after its action has ended.
  const [downloadError, setDownloadError] = useState<unknown>(undefined);
  const { data, error, loading, reload } = useApi<Detail>(async (signal) => {
    const artifact = await client.get<Artifact>(`/api/artifacts/${id}`, undefined, signal);
    const optional = <T,>(p: Promise<T>) =>
      p.catch((e: unknown) => {
        if (e instanceof ApiError && (e.status === 404 || e.status === 409 || e.status === 403))
          return undefined;
        throw e;
      });
    const [report, signatures, verification] = await Promise.all([
      // A report exists only once the scan finished; asking earlier is an expected 409.
      pendingScan(artifact)
        ? Promise.resolve(undefined)
        : optional(client.get<ScanReport>(`/api/artifacts/${id}/scan-results`, undefined, signal)),
      optional(client.get<{ signatures: Signature[] }>(`/api/artifacts/${id}/signatures`, undefined, signal)),
      optional(client.get<Verification>(`/api/artifacts/${id}/verification`, undefined, signal)),
    ]);
    return { artifact, report, signatures: signatures?.signatures ?? [], verification };
  }, `${id}:${tick}`);

  const artifact = data?.artifact;
  useEffect(() => {
    if (artifact === undefined || !pendingScan(artifact)) return;
    const timer = setTimeout(() => setTick((t) => t + 1), POLL_MS);
    return () => clearTimeout(timer);
  }, [artifact]);

  const act = (what: string, fn: () => Promise<unknown>) => {
    setDoing(what);
    setDownloadError(undefined);
    void action.run(async () => {
      await fn();
      reload();
    });
  };
  const busyWith = (what: string) => ({ loading: action.busy && doing === what, disabled: action.busy });

  return (
    <Page
      title={artifact === undefined ? 'Artifact' : `${artifact.name} ${artifact.version}`}
      loading={loading && data === undefined}
    >
      <ErrorAlert error={error} onRetry={reload} />
      <ErrorAlert error={action.error ?? downloadError} />
      {artifact === undefined ? null : (
        <Stack spacing={2}>
          <Card>
            <CardContent>
              <Box sx={{ display: 'flex', alignItems: 'center', gap: 1, mb: 1 }}>
                <Typography variant="h6" component="h2" sx={{ flexGrow: 1 }}>
                  Metadata
                </Typography>
                <span data-testid="artifact-status">
                  <StatusChip status={artifact.status} />
                </span>
              </Box>
              <Box component="dl" sx={{ m: 0 }}>
                <Field label="Repository">{artifact.repository}</Field>
                <Field label="File">{artifact.fileName}</Field>
                <Field label="Size">{formatBytes(artifact.size)}</Field>
                <Field label="Media type">{artifact.mediaType}</Field>
                <Field label="SHA-256">
                  <code data-testid="artifact-sha256">{artifact.sha256}</code>
                </Field>
                <Field label="Uploaded">{`${formatTime(artifact.createdAt)} by ${artifact.uploadedBy}`}</Field>
                <Field label="Scan">{`${artifact.scanState}${artifact.scannedAt === null ? '' : `, ${formatTime(artifact.scannedAt)}`}`}</Field>
                <Field label="Verdict reason">{artifact.statusReason ?? '—'}</Field>
                {artifact.policyVersion === null ? null : (
                  <Field label="Policy version">{artifact.policyVersion}</Field>
                )}
              </Box>
              <Box sx={{ display: 'flex', gap: 1, flexWrap: 'wrap', mt: 2 }}>
                {can('artifacts:download') ? (
                  <Button
                    variant="contained"
                    {...busyWith('download')}
                    onClick={() => act('download', () => downloadArtifact(client, id, setDownloadError))}
                  >
                    Download
                  </Button>
                ) : null}
                {data?.report === undefined ? null : (
                  <Button
                    variant="outlined"
                    {...busyWith('sbom')}
                    onClick={() =>
                      act('sbom', () =>
                        downloadThrough(
                          client,
                          `/api/artifacts/${id}/scan-results?format=cyclonedx`,
                          `${artifact.name}-${artifact.version}.cdx.json`,
                        ),
                      )
                    }
                  >
                    Download SBOM
                  </Button>
                )}
                {can('artifacts:scan') ? (
                  <Button
                    variant="outlined"
                    {...busyWith('scan')}
                    onClick={() => act('scan', () => client.request('POST', `/api/artifacts/${id}/scan`))}
                  >
                    Scan again
                  </Button>
                ) : null}
              </Box>
              {pendingScan(artifact) ? (
                <Alert severity="info" sx={{ mt: 2 }} aria-live="polite">
                  Quarantined while the scan runs; this page updates by itself.
                </Alert>
              ) : null}
            </CardContent>
          </Card>
          <Card>
            <CardContent>
              <Typography variant="h6" component="h2" gutterBottom>
                Scan report
              </Typography>
              {data?.report === undefined ? (
                <Typography variant="body2">No scan result yet.</Typography>
              ) : (
                <ScanReportView report={data.report} />
              )}
            </CardContent>
          </Card>
          <Card>
            <CardContent>
              <Typography variant="h6" component="h2" gutterBottom>
                Signatures and trust
              </Typography>
              {data?.verification === undefined ? null : (
                <Alert
                  severity={data.verification.trusted ? 'success' : 'warning'}
                  sx={{ mb: 1 }}
                  data-testid="trust"
                >
                  {data.verification.trusted
                    ? data.verification.signer === undefined
                      ? 'Trusted by the current trust policy.'
                      : `Trusted by the current trust policy: verified signature of ${data.verification.signer}.`
                    : `Not trusted: ${data.verification.reasons.join('; ')}`}
                </Alert>
              )}
              {data?.signatures.length === 0 ? (
                <Typography variant="body2">No signatures.</Typography>
              ) : (
                <>
                  <Typography variant="body2" color="text.secondary">
                    The identities below are what each signature names for itself; only the trust verdict
                    above is checked.
                  </Typography>
                  <ul>
                    {data?.signatures.map((s) => (
                      <li key={s.id}>
                        <Typography variant="body2">
                          {s.kind} signature naming <code>{s.identity || s.createdBy}</code> (unverified),
                          added {formatTime(s.createdAt)}
                        </Typography>
                      </li>
                    ))}
                  </ul>
                </>
              )}
            </CardContent>
          </Card>
          {can('artifacts:override') ? (
            <Card>
              <CardContent>
                <Typography variant="h6" component="h2" gutterBottom>
                  Administrator override
                </Typography>
                <OverrideForm artifact={artifact} onDone={() => reload()} />
              </CardContent>
            </Card>
          ) : null}
        </Stack>
      )}
    </Page>
  );
}
