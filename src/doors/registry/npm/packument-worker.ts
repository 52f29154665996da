/**
 * Worker thread for large packuments: reading, filtering, serializing and compressing a 10 MB+
 * document takes hundreds of milliseconds, which must not stall the event loop that serves
 * every other request. Chunks are fed as they arrive from the uplink, so reading overlaps the
 * download; only the small summary and the finished bytes cross back to the main thread.
 */
import { parentPort } from 'node:worker_threads';
import { compressSync, type EntryMeta, identityEntry, type MetadataEntry } from '../cache/entry.ts';
import { MalformedPackument, type PackumentSummary } from './packument.ts';
import { PackumentStream } from './packument-stream.ts';

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
  | { readonly id: number; readonly ok: false; readonly malformed: boolean; readonly message: string };

interface Job {
  readonly stream: PackumentStream;
  /** The first error while reading; reported at `end`. */
  error?: unknown;
}

const jobs = new Map<number, Job>();

const failure = (id: number, error: unknown): WorkerReply => ({
  id,
  ok: false,
  malformed: error instanceof SyntaxError || error instanceof MalformedPackument,
  message: error instanceof Error ? error.message : String(error),
});

function render(msg: Extract<WorkerRequest, { op: 'render' }>, job: Job): WorkerReply {
  const denied = new Set(msg.denied);
  const text = job.stream.render(denied);
  const full = identityEntry(msg.meta, text.full, job.stream.etag('full', denied));
  const abbreviated = identityEntry(
    { ...msg.meta, contentType: 'application/vnd.npm.install-v1+json' },
    text.abbreviated,
    job.stream.etag('abbreviated', denied),
  );
  // The identity bytes go back now (copied: they are needed here once more); the compressed
  // forms follow in a second message under `compressId`.
  setImmediate(() => {
    try {
      const fullZ = compressSync(full);
      const abbrZ = compressSync(abbreviated);
      // Small zlib outputs may sit in Node's shared buffer pool, which cannot be transferred.
      const own = (b: Buffer) =>
        b.byteOffset === 0 && b.byteLength === b.buffer.byteLength
          ? b
          : Buffer.from(new Uint8Array(b).buffer);
      const fullZ2 = { ...fullZ, gzip: own(fullZ.gzip), br: own(fullZ.br) };
      const abbrZ2 = { ...abbrZ, gzip: own(abbrZ.gzip), br: own(abbrZ.br) };
      const buffers = [fullZ2, abbrZ2].flatMap((e) => [e.gzip, e.br].map((b) => b.buffer as ArrayBuffer));
      parentPort?.postMessage(
        { id: msg.compressId, ok: true, full: fullZ2, abbreviated: abbrZ2 } satisfies WorkerReply,
        [...new Set(buffers)],
      );
    } catch (error) {
      parentPort?.postMessage(failure(msg.compressId, error));
    }
  });
  return { id: msg.id, ok: true, full, abbreviated };
}

function handle(msg: WorkerRequest): WorkerReply | undefined {
  if (msg.op === 'begin') {
    jobs.set(msg.id, { stream: new PackumentStream(msg.name, msg.tarballBase, msg.sizeHint) });
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
    return undefined;
  }
  if (msg.op === 'end') {
    if (job.error !== undefined) {
      jobs.delete(msg.id);
      return failure(msg.id, job.error);
    }
    return { id: msg.id, ok: true, summary: job.stream.end() };
  }
  jobs.delete(msg.id);
  return render(msg, job);
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
