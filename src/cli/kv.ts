import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Code, ConnectError } from '@connectrpc/connect';
import { parseDuration } from '#core/config';
import { createKvClient, type KvClient } from '../doors/kv/index.ts';
import { CliError, readSavedLogin } from './client.ts';
import { type CommandContext, type CommandSpec, EXIT, type FlagSpec, usageError } from './framework.ts';
import type { Progress } from './output.ts';

const CONNECTION_FLAGS: readonly FlagSpec[] = [
  {
    name: 'kv-url',
    type: 'string',
    value: 'URL',
    description: 'kv listener, e.g. https://127.0.0.1:7443 (or GATEHOUSE_KV_URL)',
  },
  {
    name: 'ca',
    type: 'string',
    value: 'FILE',
    description: 'CA of the server certificate (default: the data folder development CA)',
  },
  { name: 'cert', type: 'string', value: 'FILE', description: 'Client certificate for mTLS (PEM)' },
  { name: 'key', type: 'string', value: 'FILE', description: 'Private key of --cert (PEM)' },
];

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

async function kvClient(ctx: CommandContext): Promise<KvClient> {
  const url = ctx.flag('kv-url') ?? ctx.env['GATEHOUSE_KV_URL'] ?? 'https://127.0.0.1:7443';
  const caFile = ctx.flag('ca') ?? ctx.env['GATEHOUSE_KV_CA'];
  const home = ctx.env['GATEHOUSE_HOME'] ?? '.gatehouse';
  const ca =
    caFile === undefined ? await readOptional(join(home, 'tls', 'ca.crt')) : await readFile(caFile, 'utf8');
  const certFile = ctx.flag('cert');
  const keyFile = ctx.flag('key');
  if ((certFile === undefined) !== (keyFile === undefined))
    throw usageError('"--cert" and "--key" go together');
  const token =
    ctx.flag('token') ?? ctx.env['GATEHOUSE_TOKEN'] ?? (await readSavedLogin(ctx.env))?.accessToken;
  return createKvClient({
    url,
    timeoutMs: 30_000,
    ...(ca === undefined ? {} : { ca }),
    ...(token === undefined ? {} : { token }),
    ...(certFile === undefined || keyFile === undefined
      ? {}
      : { cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') }),
  });
}

/** Runs one call, turning a gRPC status into the CLI's error form and exit code. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (!(error instanceof ConnectError)) throw error;
    const code = error.metadata.get('gatehouse-error-code') ?? undefined;
    const errorId = error.metadata.get('gatehouse-error-id') ?? undefined;
    const exitCode =
      error.code === Code.Unauthenticated
        ? EXIT.auth
        : error.code === Code.PermissionDenied
          ? EXIT.denied
          : EXIT.error;
    throw new CliError(error.rawMessage, {
      exitCode,
      ...(code === undefined ? {} : { code }),
      ...(errorId === undefined ? {} : { errorId }),
    });
  }
}

async function readStdin(ctx: CommandContext): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of ctx.stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

function ttlSeconds(text: string | undefined): number {
  if (text === undefined) return 0;
  const ms = parseDuration(text);
  if (ms === undefined || ms % 1000 !== 0)
    throw usageError(`Invalid "--ttl" "${text}": expected whole seconds such as "30s" or "1h"`);
  return ms / 1000;
}

const [NS, KEY] = [0, 1];

/** `gatehouse kv get|set|del|ls`: the kv API for people, over the same gRPC listener services use. */
export const kvCommands: readonly CommandSpec[] = [
  {
    name: 'kv get',
    summary: 'Print the value of a key (raw bytes; --json adds version, metadata and TTL)',
    usage: 'NAMESPACE KEY',
    flags: CONNECTION_FLAGS,
    args: { min: 2, max: 2 },
    async run(ctx) {
      const client = await kvClient(ctx);
      const res = await call(() => client.get({ namespace: ctx.args[NS] ?? '', key: ctx.args[KEY] ?? '' }));
      if (!res.found || res.entry === undefined) {
        ctx.out.result({ found: false }, () => ctx.out.error(`Key "${ctx.args[KEY]}" not found`));
        return EXIT.error;
      }
      const e = res.entry;
      if (ctx.out.json) {
        ctx.out.result({
          found: true,
          key: e.key,
          value: Buffer.from(e.value).toString('base64'),
          version: e.version.toString(),
          metadata: e.metadata,
          ttlMs: Number(e.ttlMs),
        });
      } else process.stdout.write(e.value);
      return EXIT.ok;
    },
  },
  {
    name: 'kv set',
    summary: 'Write a value (the argument, or stdin when it is "-" or absent)',
    usage: 'NAMESPACE KEY [VALUE|-]',
    flags: [
      ...CONNECTION_FLAGS,
      { name: 'ttl', type: 'string', value: 'DURATION', description: 'Time to live, e.g. 30s or 24h' },
      {
        name: 'if-version',
        type: 'number',
        value: 'N',
        description: 'Write only if the key is at version N (0: absent)',
      },
      { name: 'metadata', type: 'string', value: 'JSON', description: 'Metadata stored with the value' },
    ],
    args: { min: 2, max: 3 },
    async run(ctx) {
      const raw = ctx.args[2];
      const value = raw === undefined || raw === '-' ? await readStdin(ctx) : Buffer.from(raw, 'utf8');
      const ifVersion = ctx.flags['if-version'];
      const client = await kvClient(ctx);
      const res = await call(() =>
        client.set({
          namespace: ctx.args[NS] ?? '',
          key: ctx.args[KEY] ?? '',
          value,
          ttlSeconds: ttlSeconds(ctx.flag('ttl')),
          metadata: ctx.flag('metadata') ?? '',
          ...(typeof ifVersion === 'number' ? { expectedVersion: BigInt(ifVersion) } : {}),
        }),
      );
      ctx.out.result({ version: res.version.toString() }, () => ctx.out.line(`version ${res.version}`));
      return EXIT.ok;
    },
  },
  {
    name: 'kv del',
    summary: 'Delete a key',
    usage: 'NAMESPACE KEY',
    flags: CONNECTION_FLAGS,
    args: { min: 2, max: 2 },
    async run(ctx) {
      const client = await kvClient(ctx);
      const res = await call(() =>
        client.delete({ namespace: ctx.args[NS] ?? '', key: ctx.args[KEY] ?? '' }),
      );
      ctx.out.result({ deleted: res.deleted }, () => ctx.out.line(res.deleted ? 'deleted' : 'not found'));
      return res.deleted ? EXIT.ok : EXIT.error;
    },
  },
  {
    name: 'kv ls',
    summary: 'List keys of a namespace that start with PREFIX, in byte order',
    usage: 'NAMESPACE [PREFIX]',
    flags: [
      ...CONNECTION_FLAGS,
      { name: 'limit', type: 'number', value: 'N', description: 'Stop after N keys (default: all)' },
    ],
    args: { min: 1, max: 2 },
    async run(ctx) {
      const client = await kvClient(ctx);
      const limit = typeof ctx.flags['limit'] === 'number' ? ctx.flags['limit'] : Number.POSITIVE_INFINITY;
      const keys: string[] = [];
      // A namespace of many keys takes many pages: from the second page on, people at a
      // terminal see the count grow (a listing of one page shows none).
      let progress: Progress | undefined;
      let pageToken = '';
      do {
        const res = await call(() =>
          client.list({
            namespace: ctx.args[NS] ?? '',
            prefix: ctx.args[1] ?? '',
            pageSize: 1000,
            pageToken,
          }),
        );
        keys.push(...res.keys);
        pageToken = res.nextPageToken;
        if (pageToken !== '') progress ??= ctx.out.progress(`ls ${ctx.args[NS] ?? ''}`, undefined, 'keys');
        progress?.advance(res.keys.length);
      } while (pageToken !== '' && keys.length < limit && !ctx.signal.aborted);
      progress?.done();
      const rows = keys.slice(0, limit).map((key) => ({ key }));
      ctx.out.table(rows, [{ header: 'KEY', value: (r) => r.key }]);
      return EXIT.ok;
    },
  },
];
