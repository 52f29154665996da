import { Worker } from 'node:worker_threads';
import { GatewayError } from '#core/errors';
import { type EntryMeta, makeEntry, type MetadataEntry } from '../cache/entry.ts';
import { MalformedPackument, type PackumentSummary } from './packument.ts';
import { PackumentStream } from './packument-stream.ts';
import type { WorkerReply, WorkerRequest } from './packument-worker.ts';

/** What the caller decides once it has seen the summary. */
export interface RenderPlan {
  readonly denied: readonly string[];
  readonly meta: EntryMeta;
}

type Plan = (s: PackumentSummary) => Promise<RenderPlan>;

export interface Processed {
  readonly summary: PackumentSummary;
  /** Entries to answer with now; some forms may still be empty (see `gzipEntry`). */
  readonly full: MetadataEntry;
  readonly abbreviated: MetadataEntry;
  /** The same entries with every form, once made (immediately for inline work). */
  readonly compressed: Promise<{ readonly full: MetadataEntry; readonly abbreviated: MetadataEntry }>;
  /** The upstream bytes as received, for the raw cache (after the answer for worker reads). */
  readonly raw: Promise<Buffer>;
}

/** Buffers arrive as Uint8Arrays after a thread hop; make them Buffers again without copying. */
function revive(e: MetadataEntry): MetadataEntry {
  const buf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return { ...e, identity: buf(e.identity), gzip: buf(e.gzip), br: buf(e.br) };
}

function malformed(name: string, why: string): GatewayError {
  return new GatewayError('GW_ERR_REGISTRY_UPSTREAM_INVALID', {
    message: `Uplink sent invalid metadata for "${name}": ${why.slice(0, 200)}`,
  });
}

interface Slot {
  readonly worker: Worker;
  readonly pending: Map<number, { resolve: (r: WorkerReply) => void; reject: (e: unknown) => void }>;
}

/**
 * Parses, filters and compresses packuments: inline below `threshold` bytes, in a worker thread
 * at or above it. The plan callback (policy evaluation, which needs the database) runs on the
 * main thread between the two worker steps.
 */
/** Where the bytes come from and how many are acceptable. */
export interface PackumentSource {
  readonly name: string;
  readonly tarballBase: string;
  /** The upstream `Content-Length`, when it sent one. */
  readonly sizeHint?: number;
  readonly limit: number;
  readonly tooLarge: () => Error;
  /** The chunks are the caller's to give away (fresh from the uplink): the worker takes them over. */
  readonly owned?: boolean;
}

export class PackumentProcessor {
  readonly #threshold: number;
  readonly #size: number;
  readonly #slots: Slot[] = [];
  #next = 1;

  constructor(options: { readonly threshold: number; readonly workers: number }) {
    this.#threshold = options.threshold;
    this.#size = options.workers;
  }

  /** Starts the worker threads now, so that the first large miss does not wait for them. */
  warm(): void {
    while (this.#slots.length < this.#size) this.#spawn();
  }

  /** Processes bytes already at hand (the cached raw document). */
  process(bytes: Buffer, src: Omit<PackumentSource, 'limit' | 'tooLarge'>, plan: Plan): Promise<Processed> {
    return this.processStream(
      [bytes],
      {
        ...src,
        sizeHint: bytes.length,
        limit: Number.POSITIVE_INFINITY,
        tooLarge: () => new Error('unreachable'),
      },
      plan,
    );
  }

  /**
   * Reads a packument while it downloads. Small ones (by `Content-Length`) are read inline;
   * others are fed chunk by chunk to a worker so that reading overlaps the transfer.
   */
  async processStream(
    chunks: AsyncIterable<Buffer> | Iterable<Buffer>,
    src: PackumentSource,
    plan: Plan,
  ): Promise<Processed> {
    const parts: Buffer[] = [];
    let total = 0;
    // Small documents are read inline; once the bytes reach the threshold (or the declared
    // length does) a worker takes over and reads the rest as it arrives.
    let job: { slot: Slot; id: number } | undefined;
    let summary: Promise<WorkerReply> | undefined;
    // Chunks the uplink client allocated move to the worker instead of being copied; bytes the
    // caller still holds (a cached document) are copied.
    const post = (bytes: Buffer) => {
      if (job === undefined) return;
      const whole =
        src.owned === true && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
      job.slot.worker.postMessage(
        { id: job.id, op: 'chunk', bytes } satisfies WorkerRequest,
        whole ? [bytes.buffer as ArrayBuffer] : [],
      );
    };
    const start = () => {
      const slot = this.#slot();
      const id = this.#next++;
      slot.worker.postMessage({
        id,
        op: 'begin',
        name: src.name,
        tarballBase: src.tarballBase,
        sizeHint: src.sizeHint ?? total,
      } satisfies WorkerRequest);
      job = { slot, id };
      // The worker answers with the summary as soon as the document closes (see the worker).
      summary = this.#call(slot, { id, op: 'end' }, false);
      summary.catch(() => undefined);
      for (const part of parts.splice(0)) post(part);
    };
    try {
      for await (const c of chunks) {
        total += c.length;
        if (total > src.limit) throw src.tooLarge();
        if (job !== undefined) post(c);
        else {
          parts.push(c);
          if (total >= this.#threshold || (src.sizeHint ?? 0) >= this.#threshold) start();
        }
      }
    } catch (error) {
      if (job !== undefined) {
        job.slot.worker.postMessage({ id: job.id, op: 'drop' } satisfies WorkerRequest);
        const waiting = job.slot.pending.get(job.id);
        job.slot.pending.delete(job.id);
        waiting?.reject(error);
      }
      throw error;
    }
    if (job === undefined) {
      const raw = Buffer.concat(parts, total);
      return { ...(await this.#inline(raw, src, plan)), raw: Promise.resolve(raw) };
    }
    const { slot, id } = job;
    slot.worker.postMessage({ id, op: 'end' } satisfies WorkerRequest);
    const parsed = await (summary as Promise<WorkerReply>);
    if (!parsed.ok) throw malformed(src.name, parsed.message);
    if (!('summary' in parsed)) throw new Error('unexpected worker reply');
    let p: RenderPlan;
    try {
      p = await plan(parsed.summary);
    } catch (error) {
      slot.worker.postMessage({ id, op: 'drop' } satisfies WorkerRequest);
      throw error;
    }
    const compressId = this.#next++;
    // Registered before the render request so the second reply is never missed.
    const completed = this.#call(slot, { id: compressId, op: 'drop' }, false);
    const rendered = await this.#call(slot, { id, op: 'render', denied: p.denied, meta: p.meta, compressId });
    if (!rendered.ok && rendered.malformed) throw malformed(src.name, rendered.message);
    if (!rendered.ok || !('full' in rendered))
      throw new Error(rendered.ok ? 'unexpected worker reply' : rendered.message);
    const full = revive(rendered.full);
    const abbreviated = revive(rendered.abbreviated);
    const rest = completed.then((r) => {
      if (!r.ok || !('rest' in r)) throw new Error(r.ok ? 'unexpected worker reply' : r.message);
      return r;
    });
    const add = (e: MetadataEntry, forms: { identity: Buffer; gzip: Buffer; br: Buffer }) => {
      const { splicedGzip: _, ...meta } = e.meta;
      return revive({ ...e, meta, ...forms });
    };
    return {
      summary: parsed.summary,
      full,
      abbreviated,
      compressed: rest.then((r) => ({
        full: add(full, r.rest.full),
        abbreviated: add(abbreviated, r.rest.abbreviated),
      })),
      raw: rest.then((r) => Buffer.from(r.raw.buffer, r.raw.byteOffset, r.raw.byteLength)),
    };
  }

  async #inline(
    bytes: Buffer,
    src: Omit<PackumentSource, 'limit' | 'tooLarge'>,
    plan: Plan,
  ): Promise<Omit<Processed, 'raw'>> {
    const stream = new PackumentStream(src.name, src.tarballBase, bytes.length);
    let summary: PackumentSummary;
    try {
      stream.push(bytes);
      summary = stream.end();
    } catch (error) {
      if (error instanceof SyntaxError || error instanceof MalformedPackument)
        throw malformed(src.name, error.message);
      throw error;
    }
    const p = await plan(summary);
    const text = stream.render(new Set(p.denied));
    const [full, abbreviated] = await Promise.all([
      makeEntry(p.meta, text.full),
      makeEntry({ ...p.meta, contentType: 'application/vnd.npm.install-v1+json' }, text.abbreviated),
    ]);
    return { summary, full, abbreviated, compressed: Promise.resolve({ full, abbreviated }) };
  }

  #spawn(): Slot {
    const worker = new Worker(new URL('./packument-worker.ts', import.meta.url));
    const slot: Slot = { worker, pending: new Map() };
    worker.on('message', (reply: WorkerReply) => {
      slot.pending.get(reply.id)?.resolve(reply);
      slot.pending.delete(reply.id);
    });
    worker.on('error', (error) => {
      for (const p of slot.pending.values()) p.reject(error);
      slot.pending.clear();
      this.#slots.splice(this.#slots.indexOf(slot), 1);
    });
    worker.unref();
    this.#slots.push(slot);
    return slot;
  }

  #slot(): Slot {
    if (this.#slots.length < this.#size) return this.#spawn();
    return this.#slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  #call(slot: Slot, msg: WorkerRequest, post = true): Promise<WorkerReply> {
    return new Promise((resolve, reject) => {
      slot.pending.set(msg.id, { resolve, reject });
      slot.worker.ref();
      const done = () => {
        if ([...this.#slots].every((s) => s.pending.size === 0))
          for (const s of this.#slots) s.worker.unref();
      };
      const wrapped = slot.pending.get(msg.id);
      slot.pending.set(msg.id, {
        resolve: (r) => {
          wrapped?.resolve(r);
          done();
        },
        reject: (e) => {
          wrapped?.reject(e);
          done();
        },
      });
      if (post) slot.worker.postMessage(msg);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
    this.#slots.length = 0;
  }
}
