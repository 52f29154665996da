import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import { Code, ConnectError } from '@connectrpc/connect';
import { parseDuration } from '#core/config';
import { createKvClient, type KvClient } from '../doors/kv/index.ts';
import { CliError, readSavedLogin, refreshSavedLogin, type SavedLogin } from './client.ts';
import { type CommandContext, type CommandSpec, EXIT, type FlagSpec, usageError } from './framework.ts';
import { kvCallError } from './kv-call-error.ts';
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

/** The kv client of a command. */
interface KvConnection {
  /** Runs one call, turning a failure into the CLI's error form and exit code. */
  call<T>(fn: (client: KvClient) => Promise<T>): Promise<T>;
}

/** A PEM file a flag names; one that cannot be read is a usage error naming the flag. */
async function readFlagFile(flag: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw usageError(`Cannot read the "--${flag}" file "${file}" (${code})`);
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

/**
 * The CA file must hold PEM certificates: TLS silently ignores anything else, and every server
 * would then look untrusted (`GW_ERR_CLI_NO_SERVER`) instead of the file being named.
 */
function checkCa(pem: string, file: string, url: string): void {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  const reason =
    blocks.length === 0
      ? 'no "BEGIN CERTIFICATE" block'
      : blocks.map(certificateError).find((error) => error !== undefined);
  if (reason !== undefined)
    throw new CliError(
      `Cannot connect to "${url}": the CA file "${file}" is not a usable PEM certificate (${reason})`,
      { code: 'GW_ERR_TLS_INVALID' },
    );
}

/** Why one PEM certificate block does not parse (OpenSSL's code), or undefined when it does. */
function certificateError(block: string): string | undefined {
  try {
    return new X509Certificate(block).raw.length > 0 ? undefined : 'empty certificate';
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? code : 'unreadable certificate';
  }
}

/** A host name of this machine: `localhost` (and its subdomains), 127.0.0.0/8 or ::1. */
function isLoopback(hostname: string): boolean {
  const host = hostname
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '')
    .toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost') || host === '::1') return true;
  return isIPv4(host) && host.startsWith('127.');
}

async function kvConnect(ctx: CommandContext): Promise<KvConnection> {
  const url = ctx.flag('kv-url') ?? ctx.env['GATEHOUSE_KV_URL'] ?? 'https://127.0.0.1:7443';
  const parsed = URL.parse(url);
  if (parsed === null || !/^https?:$/.test(parsed.protocol))
    throw usageError(`Invalid kv URL "${url}": expected one such as "https://127.0.0.1:7443"`);
  // The token or API key goes in the first HEADERS frame, before any answer: over http:// to
  // another machine it would cross the network in clear text. A kv listener speaks only TLS, so
  // plain text is only ever a local stand-in (or a mistake that the connection error explains).
  if (parsed.protocol === 'http:' && !isLoopback(parsed.hostname))
    throw usageError(
      `Invalid kv URL "${url}": credentials would travel in clear text; a kv listener speaks TLS: use an https:// URL`,
    );
  const caFile = ctx.flag('ca') ?? ctx.env['GATEHOUSE_KV_CA'];
  const home = ctx.env['GATEHOUSE_HOME'] ?? '.gatehouse';
  const ca =
    caFile === undefined ? await readOptional(join(home, 'tls', 'ca.crt')) : await readFlagFile('ca', caFile);
  if (ca !== undefined) checkCa(ca, caFile ?? join(home, 'tls', 'ca.crt'), url);
  const certFile = ctx.flag('cert');
  const keyFile = ctx.flag('key');
  if ((certFile === undefined) !== (keyFile === undefined))
    throw usageError('"--cert" and "--key" go together');
  const tls = {
    ...(ca === undefined ? {} : { ca }),
    ...(certFile === undefined || keyFile === undefined
      ? {}
      : { cert: await readFlagFile('cert', certFile), key: await readFlagFile('key', keyFile) }),
  };
  const given = ctx.flag('token') ?? ctx.env['GATEHOUSE_TOKEN'];
  let saved = given === undefined ? await readSavedLogin(ctx.env) : undefined;
  if (saved !== undefined && expiresSoon(saved)) saved = (await refreshLogin(ctx, saved, false)) ?? saved;
  const connect = (token: string | undefined) =>
    createKvClient({ url, timeoutMs: 30_000, ...tls, ...(token === undefined ? {} : { token }) });
  let client = connect(given ?? saved?.accessToken);
  let retried = false;
  const call = async <T>(fn: (client: KvClient) => Promise<T>): Promise<T> => {
    try {
      return await fn(client);
    } catch (error) {
      if (!(error instanceof ConnectError)) throw error;
      // The saved login's token expired since it was read (or its expiry was not saved):
      // refresh it once, as the HTTP commands do, and repeat the call once.
      if (saved !== undefined && !retried && tokenExpired(error)) {
        retried = true;
        const next = await refreshLogin(ctx, saved, true);
        if (next !== undefined) {
          saved = next;
          client = connect(next.accessToken);
          return call(fn);
        }
      }
      throw kvCallError(error, url);
    }
  };
  return { call };
}

/**
 * A saved access token this close to its expiry is refreshed before the first call (one that
 * expires later, during a long `kv ls`, is refreshed when the listener says it expired).
 */
const REFRESH_MARGIN_MS = 5_000;

function expiresSoon(saved: SavedLogin): boolean {
  return saved.expiresAt !== undefined && saved.expiresAt - Date.now() < REFRESH_MARGIN_MS;
}

function tokenExpired(error: ConnectError): boolean {
  return (
    error.code === Code.Unauthenticated &&
    error.metadata.get('gatehouse-error-code') === 'GW_ERR_AUTH_TOKEN_EXPIRED'
  );
}

/**
 * Refreshes the saved login at its server. Before a call, a server that does not answer leaves
 * the token as it was (it may still be valid); after an expired-token answer it is the error.
 */
async function refreshLogin(
  ctx: CommandContext,
  saved: SavedLogin,
  required: boolean,
): Promise<SavedLogin | undefined> {
  try {
    return await refreshSavedLogin(ctx.env, saved.server.replace(/\/+$/, ''), saved);
  } catch (error) {
    if (required) throw error;
    return undefined;
  }
}

async function readStdin(ctx: CommandContext): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of ctx.stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/** The longest TTL a write may ask for (`ttl_seconds` in proto/gatehouse/kv/v1/kv.proto). */
const MAX_TTL_SECONDS = 31_536_000;
const UINT64_MAX = 2n ** 64n - 1n;

/** `--ttl`: whole seconds as a plain number ("60") or a duration with units ("1h", "1000ms"). */
function ttlSeconds(text: string | undefined): number {
  if (text === undefined) return 0;
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : parseDuration(text);
  if (ms === undefined || ms % 1000 !== 0 || ms / 1000 > MAX_TTL_SECONDS)
    throw usageError(
      `Invalid "--ttl" "${text}": expected whole seconds from 0 (no expiry) to ${MAX_TTL_SECONDS} (365d), such as "60", "30s" or "1h"`,
    );
  return ms / 1000;
}

/**
 * `--if-version`: the decimal text of a uint64 (`expected_version`), read as a bigint so that
 * versions above 2^53 keep every digit; 0 means "only if the key is absent".
 */
function expectedVersion(text: string | undefined): bigint | undefined {
  if (text === undefined) return undefined;
  const version = /^\d+$/.test(text) ? BigInt(text) : undefined;
  if (version === undefined || version > UINT64_MAX)
    throw usageError(
      `Invalid "--if-version" "${text}": expected a whole number from 0 (only if absent) to ${UINT64_MAX}`,
    );
  return version;
}

/** `--limit`: a count of at least 1, or undefined (no limit) when the flag is absent. */
function positiveLimit(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : 0;
  if (!Number.isSafeInteger(n) || n < 1)
    throw usageError(
      `Invalid "--limit" "${text}": expected a whole number from 1 to ${Number.MAX_SAFE_INTEGER}`,
    );
  return n;
}

const [NS, KEY] = [0, 1];

/** `gatehouse kv get|set|del|ls`: the kv API for people, over the same gRPC listener services use. */
export const kvCommands: readonly CommandSpec[] = [
  {
    name: 'kv get',
    summary:
      'Print the value of a key (raw bytes; escaped at a terminal; --json adds version, metadata and TTL)',
    usage: 'NAMESPACE KEY',
    flags: CONNECTION_FLAGS,
    args: { min: 2, max: 2 },
    async run(ctx) {
      const kv = await kvConnect(ctx);
      const res = await kv.call((c) => c.get({ namespace: ctx.args[NS] ?? '', key: ctx.args[KEY] ?? '' }));
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
      } else ctx.out.value(e.value);
      return EXIT.ok;
    },
  },
  {
    name: 'kv set',
    summary: 'Write a value (the argument, or stdin when it is "-" or absent)',
    usage: 'NAMESPACE KEY [VALUE|-]',
    flags: [
      ...CONNECTION_FLAGS,
      {
        name: 'ttl',
        type: 'string',
        value: 'DURATION',
        description: 'Time to live in whole seconds up to 365d, e.g. 60, 30s or 24h (default: none)',
      },
      {
        name: 'if-version',
        type: 'string',
        value: 'N',
        description: 'Write only if the key is at version N (0: only if the key is absent)',
      },
      { name: 'metadata', type: 'string', value: 'JSON', description: 'Metadata stored with the value' },
    ],
    args: { min: 2, max: 3 },
    async run(ctx) {
      // Flags first: a usage error must not wait for stdin.
      const ttl = ttlSeconds(ctx.flag('ttl'));
      const ifVersion = expectedVersion(ctx.flag('if-version'));
      const raw = ctx.args[2];
      const value = raw === undefined || raw === '-' ? await readStdin(ctx) : Buffer.from(raw, 'utf8');
      const kv = await kvConnect(ctx);
      const res = await kv.call((c) =>
        c.set({
          namespace: ctx.args[NS] ?? '',
          key: ctx.args[KEY] ?? '',
          value,
          ttlSeconds: ttl,
          metadata: ctx.flag('metadata') ?? '',
          ...(ifVersion === undefined ? {} : { expectedVersion: ifVersion }),
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
      const kv = await kvConnect(ctx);
      const res = await kv.call((c) => c.delete({ namespace: ctx.args[NS] ?? '', key: ctx.args[KEY] ?? '' }));
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
      {
        name: 'limit',
        type: 'string',
        value: 'N',
        description: 'Stop after N keys, at least 1 (default: all)',
      },
    ],
    args: { min: 1, max: 2 },
    async run(ctx) {
      const limit = positiveLimit(ctx.flag('limit')) ?? Number.POSITIVE_INFINITY;
      const kv = await kvConnect(ctx);
      const keys: string[] = [];
      // A namespace of many keys takes many pages: from the second page on, people at a
      // terminal see the count grow (a listing of one page shows none).
      let progress: Progress | undefined;
      let pageToken = '';
      do {
        const res = await kv.call((c) =>
          c.list({
            namespace: ctx.args[NS] ?? '',
            prefix: ctx.args[1] ?? '',
            pageSize: Math.min(1000, limit - keys.length),
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
