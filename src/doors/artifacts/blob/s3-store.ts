import type { Readable } from 'node:stream';
import { GatewayError } from '#core/errors';
import { assertBlobKey, type BlobStat, type BlobStore, type ByteRange, type PutOptions } from './port.ts';
import { EMPTY_SHA256, sha256Hex, signV4, uriEncode } from './sigv4.ts';

/** Connection settings of an S3-compatible bucket. */
export interface S3BlobStoreOptions {
  /** Base URL of the S3 API, e.g. `http://127.0.0.1:9000`; path-style addressing is used. */
  readonly endpoint: string;
  readonly bucket: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Key prefix inside the bucket, e.g. `gatehouse/`. */
  readonly prefix?: string;
  /** Size of multipart parts; at least 5 MiB (the S3 minimum) and the memory one upload holds. */
  readonly partSize?: number;
}

interface S3Response {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Readable;
}

const MIN_PART = 5 * 1024 * 1024;

function tagValues(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) =>
    decodeXml(m[1] ?? ''),
  );
}

function decodeXml(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

async function readText(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Cuts a stream into parts of exactly `size` bytes (the last one may be shorter). */
async function* parts(body: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let buffered: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    let piece = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (length + piece.length >= size) {
      const take = size - length;
      buffered.push(piece.subarray(0, take));
      yield Buffer.concat(buffered, size);
      piece = piece.subarray(take);
      buffered = [];
      length = 0;
    }
    if (piece.length > 0) {
      buffered.push(Buffer.from(piece));
      length += piece.length;
    }
  }
  if (length > 0 || buffered.length > 0) yield Buffer.concat(buffered, length);
}

/**
 * Creates a blob store on an S3-compatible bucket, signing with SigV4 over undici. Staging is
 * an S3 multipart upload: parts are invisible until CompleteMultipartUpload, which commits the
 * object atomically; `sweepStaging` aborts multipart uploads that a crash left behind.
 */
export function createS3BlobStore(options: S3BlobStoreOptions): BlobStore {
  const base = new URL(options.endpoint);
  const prefix = options.prefix ?? '';
  const partSize = Math.max(options.partSize ?? 8 * 1024 * 1024, MIN_PART);
  const creds = {
    accessKeyId: options.accessKeyId,
    secretAccessKey: options.secretAccessKey,
    region: options.region,
    service: 's3',
  };
  const urlOf = (objectKey?: string, query: Record<string, string> = {}) => {
    const path = objectKey === undefined ? '' : `/${uriEncode(objectKey, true)}`;
    const url = new URL(`${base.pathname.replace(/\/$/, '')}/${uriEncode(options.bucket)}${path}`, base);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    return url;
  };

  async function send(
    method: string,
    url: URL,
    body?: Buffer | string,
    extra: Record<string, string> = {},
  ): Promise<S3Response> {
    const payloadHash = body === undefined ? EMPTY_SHA256 : sha256Hex(body);
    const headers = signV4({ method, url, headers: extra, payloadHash }, creds);
    delete headers['host'];
    // undici is loaded with the first S3 request: a door on the filesystem store never carries it.
    const { request } = await import('undici');
    const res = await request(url, {
      method: method as 'GET',
      headers,
      ...(body === undefined ? {} : { body }),
    });
    return { status: res.statusCode, headers: res.headers, body: res.body as unknown as Readable };
  }

  async function expectOk(
    res: S3Response,
    what: string,
    allowed: readonly number[] = [200],
  ): Promise<string> {
    const text = await readText(res.body);
    // CompleteMultipartUpload may answer 200 with an <Error> document (S3 API reference).
    if (!allowed.includes(res.status) || text.includes('<Error>')) {
      const code = tagValues(text, 'Code')[0] ?? `status ${res.status}`;
      throw new GatewayError('GW_ERR_ARTIFACTS_BLOB_STORE', {
        message: `S3 ${what} failed: ${code}`,
        details: { status: res.status, code },
      });
    }
    return text;
  }

  async function putMultipart(
    objectKey: string,
    first: Buffer,
    rest: AsyncGenerator<Buffer>,
    opts: PutOptions,
  ) {
    const created = await expectOk(await send('POST', urlOf(objectKey, { uploads: '' })), 'create upload');
    const uploadId = tagValues(created, 'UploadId')[0] ?? '';
    const etags: string[] = [];
    let size = 0;
    try {
      let part: Buffer | undefined = first;
      while (part !== undefined) {
        opts.signal?.throwIfAborted();
        const res = await send(
          'PUT',
          urlOf(objectKey, { partNumber: String(etags.length + 1), uploadId }),
          part,
        );
        await expectOk(res, 'upload part');
        etags.push(String(res.headers['etag'] ?? ''));
        size += part.length;
        const next = await rest.next();
        part = next.done === true ? undefined : next.value;
      }
      const xml = `<CompleteMultipartUpload>${etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
      await expectOk(await send('POST', urlOf(objectKey, { uploadId }), xml), 'complete upload');
      return size;
    } catch (error) {
      await send('DELETE', urlOf(objectKey, { uploadId }))
        .then((r) => readText(r.body))
        .catch(() => undefined);
      throw error;
    }
  }

  async function put(key: string, body: AsyncIterable<Uint8Array>, opts: PutOptions = {}): Promise<BlobStat> {
    assertBlobKey(key);
    const objectKey = prefix + key;
    const iterator = parts(body, partSize);
    const first = await iterator.next();
    const firstPart = first.done === true ? Buffer.alloc(0) : first.value;
    const second = first.done === true ? { done: true as const, value: undefined } : await iterator.next();
    opts.signal?.throwIfAborted();
    if (second.done === true) {
      // One part: a single PutObject is already atomic.
      await expectOk(await send('PUT', urlOf(objectKey), firstPart), 'put object');
      return { key, size: firstPart.length, modifiedAt: Date.now() };
    }
    async function* remaining(): AsyncGenerator<Buffer> {
      yield second.value as Buffer;
      yield* iterator;
    }
    const size = await putMultipart(objectKey, firstPart, remaining(), opts);
    return { key, size, modifiedAt: Date.now() };
  }

  async function stat(key: string): Promise<BlobStat | undefined> {
    assertBlobKey(key);
    const res = await send('HEAD', urlOf(prefix + key));
    res.body.resume();
    if (res.status === 404) return undefined;
    if (res.status !== 200) await expectOk(res, 'head object');
    const modified = Date.parse(String(res.headers['last-modified'] ?? ''));
    return {
      key,
      size: Number(res.headers['content-length'] ?? 0),
      modifiedAt: Number.isNaN(modified) ? 0 : modified,
    };
  }

  async function get(key: string, range?: ByteRange): Promise<Readable | undefined> {
    assertBlobKey(key);
    const headers: Record<string, string> =
      range === undefined ? {} : { range: `bytes=${range.start}-${range.end}` };
    const res = await send('GET', urlOf(prefix + key), undefined, headers);
    if (res.status === 404) {
      res.body.resume();
      return undefined;
    }
    if (res.status !== 200 && res.status !== 206) await expectOk(res, 'get object');
    return res.body;
  }

  async function* list(listPrefix = ''): AsyncGenerator<BlobStat> {
    let token: string | undefined;
    do {
      const query: Record<string, string> = { 'list-type': '2', prefix: prefix + listPrefix };
      if (token !== undefined) query['continuation-token'] = token;
      const xml = await expectOk(await send('GET', urlOf(undefined, query)), 'list objects');
      for (const block of tagValues(xml, 'Contents')) {
        const key = (tagValues(block, 'Key')[0] ?? '').slice(prefix.length);
        yield {
          key,
          size: Number(tagValues(block, 'Size')[0] ?? 0),
          modifiedAt: Date.parse(tagValues(block, 'LastModified')[0] ?? ''),
        };
      }
      token =
        tagValues(xml, 'IsTruncated')[0] === 'true' ? tagValues(xml, 'NextContinuationToken')[0] : undefined;
    } while (token !== undefined);
  }

  async function sweepStaging(olderThanMs: number): Promise<number> {
    const xml = await expectOk(await send('GET', urlOf(undefined, { uploads: '', prefix })), 'list uploads');
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const block of tagValues(xml, 'Upload')) {
      const initiated = Date.parse(tagValues(block, 'Initiated')[0] ?? '');
      if (!(initiated <= cutoff)) continue;
      const objectKey = tagValues(block, 'Key')[0] ?? '';
      const uploadId = tagValues(block, 'UploadId')[0] ?? '';
      await expectOk(await send('DELETE', urlOf(objectKey, { uploadId })), 'abort upload', [200, 204, 404]);
      removed += 1;
    }
    return removed;
  }

  return {
    kind: 's3',
    put,
    get,
    stat,
    async delete(key) {
      const existed = (await stat(key)) !== undefined;
      await expectOk(await send('DELETE', urlOf(prefix + key)), 'delete object', [200, 204, 404]);
      return existed;
    },
    list,
    sweepStaging,
    async ping() {
      await expectOk(await send('HEAD', urlOf()), 'head bucket');
    },
    async close() {},
  };
}
