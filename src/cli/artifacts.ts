import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type ArtifactView, keyHint, signStream } from '../doors/artifacts/index.ts';
import { CliError } from './client.ts';
import type { CommandContext, CommandSpec } from './framework.ts';
import { EXIT, usageError } from './framework.ts';

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function* counting(
  source: AsyncIterable<Uint8Array>,
  advance: (n: number) => void,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    advance(chunk.byteLength);
    yield chunk;
  }
}

function required(ctx: CommandContext, name: string): string {
  const value = ctx.flag(name);
  if (value === undefined || value === '') throw usageError(`--${name} is required`);
  return value;
}

const push: CommandSpec = {
  name: 'artifacts push',
  summary: 'Upload a file as an artifact (streamed, SHA-256 checked by the server)',
  usage: 'FILE',
  args: { min: 1, max: 1 },
  flags: [
    { name: 'name', type: 'string', value: 'NAME', description: 'Artifact name', required: true },
    { name: 'version', type: 'string', value: 'VERSION', description: 'Artifact version', required: true },
    { name: 'repository', type: 'string', value: 'REPO', description: 'Repository (default "default")' },
  ],
  async run(ctx) {
    const file = ctx.args[0] ?? '';
    const size = (await stat(file)).size;
    const sha256 = await sha256File(file);
    const progress = ctx.out.progress(`push ${basename(file)}`, size);
    const client = await ctx.client();
    const item = await client.request<ArtifactView & { deduplicated: boolean }>('POST', '/api/artifacts', {
      query: {
        repository: ctx.flag('repository') ?? 'default',
        name: required(ctx, 'name'),
        version: required(ctx, 'version'),
        sha256,
        fileName: basename(file),
      },
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      stream: counting(createReadStream(file, { highWaterMark: 1024 * 1024 }), (n) => progress.advance(n)),
      signal: ctx.signal,
    });
    progress.done();
    ctx.out.result(item, () =>
      ctx.out.line(
        `${item.repository}/${item.name}@${item.version} ${item.id} sha256:${item.sha256} (${item.status})`,
      ),
    );
    return EXIT.ok;
  },
};

/**
 * Where `pull` writes without -o: the artifact's file name, which its publisher chose, in the
 * current folder. It may name any file there (".npmrc", "package.json"), so an existing one is
 * never replaced unasked; a name that is no plain file name (a hostile server's) is refused.
 */
async function savedName(fileName: string): Promise<string> {
  if (fileName === '' || fileName === '.' || fileName === '..' || basename(fileName) !== fileName)
    throw usageError(
      `The artifact's file name "${fileName}" is no plain file name; choose where to write with -o FILE`,
    );
  const exists = await stat(fileName).then(
    () => true,
    () => false,
  );
  if (exists) throw usageError(`"${fileName}" exists; choose where to write with -o FILE`);
  return fileName;
}

/**
 * The file a download goes to until its digest checks: "<target>.part", or where that name is
 * longer than the 255 bytes file systems take, a name of the target's hash beside it.
 */
function partialOf(target: string): string {
  if (Buffer.byteLength(`${basename(target)}.part`) <= 255) return `${target}.part`;
  const hash = createHash('sha256').update(target).digest('hex').slice(0, 32);
  return join(dirname(target), `.${hash}.part`);
}

const pull: CommandSpec = {
  name: 'artifacts pull',
  summary:
    'Download an artifact; resumes a partial download by Range and checks the SHA-256 (exit 10 when policy refuses it)',
  usage: 'ID',
  args: { min: 1, max: 1 },
  flags: [
    {
      name: 'output',
      short: 'o',
      type: 'string',
      value: 'FILE',
      description: 'Where to write (default: its file name, never over an existing file)',
    },
  ],
  async run(ctx) {
    const id = ctx.args[0] ?? '';
    const client = await ctx.client();
    const item = await client.request<ArtifactView>('GET', `/api/artifacts/${encodeURIComponent(id)}`);
    const target = ctx.flag('output') ?? (await savedName(item.fileName));
    const partial = partialOf(target);
    const have = await stat(partial)
      .then((s) => s.size)
      .catch(() => 0);
    const fetchInto = async (from: number): Promise<boolean> => {
      const response = await client.requestRaw('GET', `/api/artifacts/${encodeURIComponent(id)}/download`, {
        raw: true,
        headers: from > 0 ? { range: `bytes=${from}-` } : {},
        signal: ctx.signal,
      });
      const appending = from > 0 && response.status === 206;
      const progress = ctx.out.progress(`pull ${item.fileName}`, item.size);
      if (appending) progress.advance(from);
      if (response.body === null) throw new CliError('Server sent no body');
      await pipeline(
        counting(response.body as unknown as AsyncIterable<Uint8Array>, (n) => progress.advance(n)),
        createWriteStream(partial, { flags: appending ? 'a' : 'w' }),
      );
      progress.done();
      return appending;
    };
    let appending = await fetchInto(have > 0 && have < item.size ? have : 0);
    let digest = await sha256File(partial);
    if (digest !== item.sha256 && appending) {
      // The partial file held other bytes (another artifact's pulled to the same name, or a
      // corrupted write): resuming it again would fail the same way on every run, so once
      // more from the start.
      appending = await fetchInto(0);
      digest = await sha256File(partial);
    }
    if (digest !== item.sha256) {
      throw new CliError(
        `Downloaded bytes have sha256 "${digest}", expected "${item.sha256}"; kept "${partial}"`,
        { code: 'GW_ERR_ARTIFACTS_INTEGRITY' },
      );
    }
    await rename(partial, target);
    ctx.out.result({ id: item.id, sha256: digest, file: target, size: item.size, resumed: appending }, () =>
      ctx.out.line(`${target} sha256:${digest}${appending ? ' (resumed)' : ''}`),
    );
    return EXIT.ok;
  },
};

const ls: CommandSpec = {
  name: 'artifacts ls',
  summary: 'List artifacts you may see',
  flags: [
    { name: 'repository', type: 'string', value: 'REPO', description: 'Only this repository' },
    { name: 'name', type: 'string', value: 'TEXT', description: 'Name contains' },
    { name: 'status', type: 'string', value: 'STATUS', description: 'quarantined, approved or blocked' },
    { name: 'sort', type: 'string', value: 'KEY', description: 'name, created or size' },
    { name: 'limit', type: 'number', value: 'N', description: 'Page size (default 50)' },
    { name: 'offset', type: 'number', value: 'N', description: 'Skip this many' },
  ],
  async run(ctx) {
    const client = await ctx.client();
    const page = await client.request<{ items: ArtifactView[]; total: number }>('GET', '/api/artifacts', {
      query: {
        repository: ctx.flag('repository'),
        name: ctx.flag('name'),
        status: ctx.flag('status'),
        sort: ctx.flag('sort'),
        limit: ctx.flags['limit'] as number | undefined,
        offset: ctx.flags['offset'] as number | undefined,
      },
    });
    if (ctx.out.json) {
      ctx.out.result(page);
      return EXIT.ok;
    }
    ctx.out.table(page.items, [
      { header: 'ID', value: (r) => r.id },
      { header: 'REPOSITORY', value: (r) => r.repository },
      { header: 'NAME', value: (r) => r.name },
      { header: 'VERSION', value: (r) => r.version },
      { header: 'SIZE', value: (r) => r.size, align: 'right' },
      { header: 'STATUS', value: (r) => r.status },
      { header: 'SHA256', value: (r) => r.sha256.slice(0, 12) },
    ]);
    ctx.out.line(`${page.items.length} of ${page.total}`);
    return EXIT.ok;
  },
};

const rm: CommandSpec = {
  name: 'artifacts rm',
  summary: 'Delete an artifact (its data key is destroyed with the last reference)',
  usage: 'ID',
  args: { min: 1, max: 1 },
  async run(ctx) {
    const client = await ctx.client();
    await client.request('DELETE', `/api/artifacts/${encodeURIComponent(ctx.args[0] ?? '')}`);
    ctx.out.result({ id: ctx.args[0], deleted: true }, () => ctx.out.line(`deleted ${ctx.args[0]}`));
    return EXIT.ok;
  },
};

const scan: CommandSpec = {
  name: 'artifacts scan',
  summary: 'Queue a rescan, or print the last report (Trivy JSON or CycloneDX with --sbom)',
  usage: 'ID',
  args: { min: 1, max: 1 },
  flags: [
    { name: 'report', type: 'boolean', description: 'Print the last scan report instead of queueing a scan' },
    { name: 'sbom', type: 'boolean', description: 'Print the CycloneDX SBOM of the last scan' },
  ],
  async run(ctx) {
    const id = encodeURIComponent(ctx.args[0] ?? '');
    const client = await ctx.client();
    if (ctx.flags['report'] === true || ctx.flags['sbom'] === true) {
      const doc = await client.request('GET', `/api/artifacts/${id}/scan-results`, {
        query: { format: ctx.flags['sbom'] === true ? 'cyclonedx' : undefined },
      });
      const parsed: unknown = typeof doc === 'string' ? JSON.parse(doc) : doc;
      ctx.out.result(parsed, () => ctx.out.lines(JSON.stringify(parsed, null, 2)));
      return EXIT.ok;
    }
    const result = await client.request<{ id: string; status: string }>('POST', `/api/artifacts/${id}/scan`);
    ctx.out.result(result, () =>
      ctx.out.line(`scan queued for ${result.id}; verdict stays "${result.status}" until it finishes`),
    );
    return EXIT.ok;
  },
};

const verify: CommandSpec = {
  name: 'artifacts verify',
  summary: 'Check an artifact against the server trust policy (exit 10 when untrusted)',
  usage: 'ID',
  args: { min: 1, max: 1 },
  async run(ctx) {
    const client = await ctx.client();
    const v = await client.request<{ trusted: boolean; signer?: string; reasons: string[]; sha256: string }>(
      'GET',
      `/api/artifacts/${encodeURIComponent(ctx.args[0] ?? '')}/verification`,
    );
    ctx.out.result(v, () =>
      ctx.out.line(
        v.trusted
          ? ctx.out.green(`trusted: ${v.reasons.join('; ')}`)
          : ctx.out.red(`untrusted: ${v.reasons.join('; ')}`),
      ),
    );
    return v.trusted ? EXIT.ok : EXIT.denied;
  },
};

const sign: CommandSpec = {
  name: 'artifacts sign',
  summary:
    'Sign an artifact: with --key and --file locally (ECDSA P-256, Sigstore bundle), or with the server key',
  usage: 'ID',
  args: { min: 1, max: 1 },
  flags: [
    { name: 'key', type: 'string', value: 'FILE', description: 'PEM PKCS#8 ECDSA P-256 private key' },
    { name: 'file', type: 'string', value: 'FILE', description: 'The artifact bytes to sign locally' },
    {
      name: 'bundle-out',
      type: 'string',
      value: 'FILE',
      description: 'Also write the bundle (for cosign verify-blob --bundle)',
    },
  ],
  async run(ctx) {
    const id = encodeURIComponent(ctx.args[0] ?? '');
    const client = await ctx.client();
    const keyFile = ctx.flag('key');
    let body: unknown = { sign: true };
    if (keyFile !== undefined) {
      const file = ctx.flag('file');
      if (file === undefined) throw usageError('--key needs --file with the artifact bytes');
      const { readFile } = await import('node:fs/promises');
      const key = createPrivateKey(await readFile(keyFile, 'utf8'));
      // The bundle says ECDSA P-256 with SHA-256; another key's signature would be stored and
      // never verify.
      if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
        throw usageError(`--key "${keyFile}" must be an ECDSA P-256 private key`);
      body = {
        bundle: await signStream(createReadStream(file), key, { hint: keyHint(createPublicKey(key)) }),
      };
    }
    const result = await client.request<{ id: string; bundle: unknown }>(
      'POST',
      `/api/artifacts/${id}/signatures`,
      { body },
    );
    const out = ctx.flag('bundle-out');
    if (out !== undefined) await writeFile(out, `${JSON.stringify(result.bundle)}\n`);
    ctx.out.result(result, () => ctx.out.line(`signature ${result.id} stored`));
    return EXIT.ok;
  },
};

/** `gatehouse artifacts …`: push, pull, list, delete, scan, verify and sign artifacts. */
export const artifactsCommands: readonly CommandSpec[] = [push, pull, ls, rm, scan, verify, sign];
