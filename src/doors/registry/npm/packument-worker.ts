/**
 * Worker thread for large packuments: reading, filtering, serializing and compressing a 10 MB+
 * document takes hundreds of milliseconds, which must not stall the event loop that serves
 * every other request. Chunks are fed as they arrive from the uplink, so reading and gzip
 * compression overlap the download; only the small summary and the finished bytes cross back
 * to the main thread, the gzip form first.
 */
import { parentPort } from 'node:worker_threads';
import { brotliOf, type EntryMeta, gzipEntry, gzipOf, type MetadataEntry } from '../cache/entry.ts';
import { MalformedPackument, type PackumentSummary } from './packument.ts';
import { FRAGMENT_CHARS, PackumentStream } from './packument-stream.ts';

export type WorkerRequest =
  | {
      readonly id: number;
      readonly op: 'begin';
      readonly name: string;
      readonly tarballBase: string;
      readonly sizeHint: number;
    }
  | { readonly id: number; readonly op: 'chunk'; readonly bytes: Uint8Array }
  | { readonly id: number; readonly op: 'end' }
  | {
      readonly id: number;
      readonly op: 'render';
      readonly denied: readonly string[];
      readonly meta: EntryMeta;
      /** Job id of the second reply, which carries the compressed entries. */
      readonly compressId: number;
    }
  | { readonly id: number; readonly op: 'drop' };

export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly summary: PackumentSummary }
  | {
      readonly id: number;
      readonly ok: true;
      readonly full: MetadataEntry;
      readonly abbreviated: MetadataEntry;
    }
  | {
      readonly id: number;
      readonly ok: true;
      /** The identity and brotli forms that complete the entries of a `render` reply. */
      readonly rest: Readonly<
        Record<
          'full' | 'abbreviated',
          { readonly identity: Buffer; readonly gzip: Buffer; readonly br: Buffer }
        >
      >;
      /** The upstream bytes as received, for the raw cache. */
      readonly raw: Uint8Array;
    }
  | { readonly id: number; readonly ok: false; readonly malformed: boolean; readonly message: string };

interface Job {
  readonly stream: PackumentStream;
  /** The first error while reading; reported at `end` (or at `render` once the summary went). */
  error?: unknown;
  /** The summary (or the failure) was sent when the document closed, before `end`. */
  answered?: boolean;
}

const jobs = new Map<number, Job>();

const failure = (id: number, error: unknown): WorkerReply => ({
  id,
  ok: false,
  malformed: error instanceof SyntaxError || error instanceof MalformedPackument,
  message: error instanceof Error ? error.message : String(error),
});

/**
 * A buffer that owns its whole ArrayBuffer, so it can be transferred: small buffers (zlib output,
 * `Buffer.concat`) live in Node's shared pool, which is never transferable; a copy gets its own.
 */
const own = (b: Buffer): Buffer =>
  b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : Buffer.from(new Uint8Array(b).buffer);

const transferable = (buffers: readonly Buffer[]): ArrayBuffer[] => [
  ...new Set(buffers.filter((b) => b.length > 0).map((b) => b.buffer as ArrayBuffer)),
];

/**
 * Answers at once with the gzip encodings spliced from fragments compressed during the download
 * (no identity bytes yet: a client that refuses gzip is served by decompressing them); the
 * identity, whole-document gzip and brotli forms follow in a second message under `compressId`.
 */
function render(msg: Extract<WorkerRequest, { op: 'render' }>, job: Job): void {
  const denied = new Set(msg.denied);
  const gz = job.stream.renderGzip(denied);
  const full = gzipEntry(msg.meta, own(gz.full), job.stream.etag('full', denied));
  const abbreviated = gzipEntry(
    { ...msg.meta, contentType: 'application/vnd.npm.install-v1+json' },
    own(gz.abbreviated),
    job.stream.etag('abbreviated', denied),
  );
  parentPort?.postMessage({ id: msg.id, ok: true, full, abbreviated } satisfies WorkerReply, [
    ...transferable([full.gzip, abbreviated.gzip]),
  ]);
  setImmediate(() => {
    try {
      const text = job.stream.render(denied);
      const forms = (t: string) => {
        const identity = own(Buffer.from(t));
        return { identity, gzip: own(gzipOf(identity)), br: own(brotliOf(identity)) };
      };
      const rest = { full: forms(text.full), abbreviated: forms(text.abbreviated) };
      const raw = job.stream.raw();
      parentPort?.postMessage(
        { id: msg.compressId, ok: true, rest, raw } satisfies WorkerReply,
        transferable([...Object.values(rest).flatMap((f) => [f.identity, f.gzip, f.br]), raw]),
      );
    } catch (error) {
      parentPort?.postMessage(failure(msg.compressId, error));
    }
  });
}

function handle(msg: WorkerRequest): WorkerReply | undefined {
  if (msg.op === 'begin') {
    jobs.set(msg.id, {
      stream: new PackumentStream(msg.name, msg.tarballBase, msg.sizeHint, FRAGMENT_CHARS),
    });
    return undefined;
  }
  const job = jobs.get(msg.id);
  if (msg.op === 'drop') {
    jobs.delete(msg.id);
    return undefined;
  }
  if (job === undefined) return failure(msg.id, new Error(`no packument job ${msg.id}`));
  if (msg.op === 'chunk') {
    if (job.error === undefined) {
      try {
        job.stream.push(msg.bytes);
      } catch (error) {
        job.error = error;
      }
    }
    // The summary goes as soon as the document closes: the main thread need not ask after the
    // last byte, which saves a round trip between threads on the cold path.
    if (job.error === undefined && !job.answered && job.stream.complete) {
      job.answered = true;
      try {
        return { id: msg.id, ok: true, summary: job.stream.end() };
      } catch (error) {
        jobs.delete(msg.id);
        return failure(msg.id, error);
      }
    }
    return undefined;
  }
  if (msg.op === 'end') {
    if (job.answered === true) return undefined;
    if (job.error !== undefined) {
      jobs.delete(msg.id);
      return failure(msg.id, job.error);
    }
    return { id: msg.id, ok: true, summary: job.stream.end() };
  }
  jobs.delete(msg.id);
  // Bytes after the close that are not whitespace fail the document even after its summary.
  if (job.error !== undefined) return failure(msg.id, job.error);
  render(msg, job);
  return undefined;
}

parentPort?.on('message', (msg: WorkerRequest) => {
  let reply: WorkerReply | undefined;
  try {
    reply = handle(msg);
  } catch (error) {
    jobs.delete(msg.id);
    reply = failure(msg.id, error);
  }
  if (reply !== undefined) parentPort?.postMessage(reply);
});
