import { Alert, Box, Button, LinearProgress, Paper, TextField, Typography } from '@mui/material';
import { type DragEvent, type FormEvent, useEffect, useId, useRef, useState } from 'react';
import { ApiError } from '../api/problem.ts';
import { useNavigate } from 'react-router';
import { withQuery } from '../api/client.ts';
import type { Artifact } from '../api/types.ts';
import { useAuth } from '../auth/auth-context.tsx';
import { ErrorAlert } from '../components/error-alert.tsx';
import { Page } from '../components/page.tsx';
import { useDraft } from '../lib/drafts.ts';
import { formatBytes } from '../lib/format.ts';
import { sha256OfFile } from '../lib/hash-file.ts';
import { uploadFile } from '../lib/upload.ts';

type Phase =
  | { readonly kind: 'idle' }
  | { readonly kind: 'hashing'; readonly done: number }
  | { readonly kind: 'uploading'; readonly sha256: string; readonly loaded: number }
  | { readonly kind: 'failed'; readonly error: unknown; readonly sha256?: string };

const FIELDS = ['repository', 'name', 'version'] as const;
type Field = (typeof FIELDS)[number];

/**
 * Which part of the form a refused upload names (the problem's `field` member): one of the three
 * fields, `file` for the file itself (its name, size or digest), or undefined for none of them.
 */
export function fieldOfError(error: unknown): Field | 'file' | undefined {
  if (!(error instanceof ApiError)) return undefined;
  const field = (error.body as { field?: unknown } | undefined)?.field;
  if ((FIELDS as readonly unknown[]).includes(field)) return field as Field;
  return field === 'file' || field === 'fileName' || field === 'sha256' ? 'file' : undefined;
}

/** What a screen reader hears of the progress: every tenth percent, not every chunk. */
export function progressAnnouncement(kind: 'hashing' | 'uploading', percent: number): string {
  const step = Math.min(100, Math.floor(percent / 10) * 10);
  return kind === 'hashing' ? `Computing SHA-256 in your browser… ${step}%` : `Uploading… ${step}%`;
}

/** Guesses name and version from `name-1.2.3.tgz`-style file names; the user can change both. */
export function guessNameVersion(fileName: string): { name: string; version: string } {
  // Strip trailing extensions (`.tar.gz`, `.json`), but not numeric parts of the version (`rc.1`).
  let base = fileName;
  for (
    let m = /\.[A-Za-z][A-Za-z0-9]*$/.exec(base);
    m !== null && m.index > 0;
    m = /\.[A-Za-z][A-Za-z0-9]*$/.exec(base)
  )
    base = base.slice(0, m.index);
  const v = /^(.+?)[-_]v?(\d+(?:\.\d+)*(?:[-+][0-9A-Za-z.-]+)?)$/.exec(base);
  return v === null ? { name: base, version: '' } : { name: v[1] ?? base, version: v[2] ?? '' };
}

export function UploadPage() {
  const { client } = useAuth();
  const navigate = useNavigate();
  const [form, update, clear] = useDraft('upload', { repository: 'default', name: '', version: '' });
  const [file, setFile] = useState<File | undefined>(undefined);
  const [phase, setPhase] = useState<Phase>({ kind: 'idle' });
  const [dragging, setDragging] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const abort = useRef<AbortController | undefined>(undefined);
  const ids = useId();
  const fileStatusId = `${ids}-file`;
  const fileErrorId = `${ids}-file-error`;
  const fieldRefs = useRef<Partial<Record<Field, HTMLInputElement | null>>>({});

  const choose = (f: File | undefined) => {
    if (f === undefined) return;
    setFile(f);
    setPhase({ kind: 'idle' });
    const guess = guessNameVersion(f.name);
    update({
      name: form.name === '' ? guess.name : form.name,
      version: form.version === '' ? guess.version : form.version,
    });
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    choose(e.dataTransfer.files[0]);
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (file === undefined) return;
    const controller = new AbortController();
    abort.current = controller;
    let sha256: string | undefined;
    try {
      setPhase({ kind: 'hashing', done: 0 });
      sha256 = await sha256OfFile(file, {
        signal: controller.signal,
        onProgress: (done) => setPhase({ kind: 'hashing', done }),
      });
      const digest = sha256;
      setPhase({ kind: 'uploading', sha256: digest, loaded: 0 });
      const url = withQuery('/api/artifacts', {
        repository: form.repository,
        name: form.name,
        version: form.version,
        fileName: file.name,
        sha256: digest,
      });
      const created = await uploadFile<Artifact>({
        url,
        token: await client.accessToken(),
        file,
        signal: controller.signal,
        onProgress: (p) => setPhase({ kind: 'uploading', sha256: digest, loaded: p.loaded }),
      });
      clear();
      navigate(`/artifacts/${created.id}`);
    } catch (error) {
      setPhase({ kind: 'failed', error, ...(sha256 === undefined ? {} : { sha256 }) });
    } finally {
      abort.current = undefined;
    }
  };

  const busy = phase.kind === 'hashing' || phase.kind === 'uploading';
  const failed = phase.kind === 'failed' ? phase : undefined;
  const errorField = failed === undefined ? undefined : fieldOfError(failed.error);
  const errorText = failed?.error instanceof Error ? failed.error.message : undefined;
  // A refusal that names a field moves the keyboard there, where the message is read with it.
  useEffect(() => {
    if (errorField !== undefined && errorField !== 'file') fieldRefs.current[errorField]?.focus();
  }, [errorField, failed]);
  const size = file?.size ?? 0;
  const percent =
    phase.kind === 'hashing'
      ? size === 0
        ? 100
        : (phase.done / size) * 100
      : phase.kind === 'uploading'
        ? size === 0
          ? 100
          : (phase.loaded / size) * 100
        : 0;

  return (
    <Page title="Upload an artifact">
      <Paper
        component="form"
        onSubmit={submit}
        sx={{ p: 3, maxWidth: 720 }}
        aria-label="Upload"
        aria-busy={busy}
      >
        <Box
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={onDrop}
          data-testid="dropzone"
          role="group"
          aria-label="File to upload"
          sx={{
            border: 2,
            borderStyle: 'dashed',
            borderColor: dragging ? 'primary.main' : 'divider',
            borderRadius: 2,
            p: 4,
            textAlign: 'center',
            bgcolor: dragging ? 'action.hover' : 'transparent',
          }}
        >
          {/* Dropping needs a mouse: the button below does the same from the keyboard, and the
              file chosen either way is announced. */}
          <Typography gutterBottom id={fileStatusId} aria-live="polite" data-testid="file-status">
            {file === undefined ? 'Drop a file here, or' : `Chosen: ${file.name} · ${formatBytes(file.size)}`}
          </Typography>
          <Button
            variant="outlined"
            onClick={() => input.current?.click()}
            disabled={busy}
            aria-describedby={errorField === 'file' ? `${fileStatusId} ${fileErrorId}` : fileStatusId}
          >
            {file === undefined ? 'Choose a file' : 'Choose another file'}
          </Button>
          {errorField === 'file' ? (
            <Typography id={fileErrorId} color="error" variant="body2" sx={{ mt: 1 }}>
              {errorText}
            </Typography>
          ) : null}
          <input
            ref={input}
            type="file"
            hidden
            aria-label="File to upload"
            data-testid="file-input"
            onChange={(e) => choose(e.target.files?.[0])}
          />
        </Box>
        <Box sx={{ display: 'grid', gridTemplateColumns: { xs: '1fr', sm: '1fr 1fr 1fr' }, gap: 2, mt: 2 }}>
          {FIELDS.map((key) => (
            <TextField
              key={key}
              label={key[0]?.toUpperCase() + key.slice(1)}
              value={form[key]}
              onChange={(e) => update({ [key]: e.target.value })}
              required
              disabled={busy}
              inputRef={(el: HTMLInputElement | null) => {
                fieldRefs.current[key] = el;
              }}
              // The refusal's message is the field's description, and the field is marked invalid.
              error={errorField === key}
              {...(errorField === key ? { helperText: errorText } : {})}
            />
          ))}
        </Box>
        {/* The live region is always there: one inserted with its text is not reliably read. */}
        <Box sx={{ mt: busy ? 2 : 0 }}>
          <Typography variant="body2" role="status" data-testid="upload-progress">
            {phase.kind === 'hashing' || phase.kind === 'uploading'
              ? progressAnnouncement(phase.kind, percent)
              : phase.kind === 'failed'
                ? 'Upload failed.'
                : ''}
          </Typography>
          {busy ? (
            <LinearProgress
              variant="determinate"
              value={percent}
              aria-label={phase.kind === 'hashing' ? 'Hashing progress' : 'Upload progress'}
            />
          ) : null}
        </Box>
        {phase.kind === 'uploading' || (phase.kind === 'failed' && phase.sha256 !== undefined) ? (
          <Typography variant="body2" sx={{ mt: 1 }}>
            SHA-256:{' '}
            <code data-testid="client-sha256">
              {phase.kind === 'uploading' ? phase.sha256 : phase.sha256}
            </code>
          </Typography>
        ) : null}
        {phase.kind === 'failed' ? (
          <>
            <ErrorAlert error={phase.error} />
            <Alert severity="info">
              The upload did not complete and nothing was stored. Your file and fields are kept; press Upload
              to try again.
            </Alert>
          </>
        ) : null}
        <Box sx={{ display: 'flex', gap: 2, mt: 2 }}>
          <Button
            type="submit"
            variant="contained"
            disabled={busy || file === undefined}
            aria-describedby={fileStatusId}
          >
            Upload
          </Button>
          {busy ? (
            <Button onClick={() => abort.current?.abort()} color="inherit">
              Cancel
            </Button>
          ) : null}
        </Box>
      </Paper>
    </Page>
  );
}
