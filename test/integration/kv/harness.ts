import { KeyObject, type webcrypto } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type Socket as NetSocket } from 'node:net';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import type { ConfigSection, CoreServices } from '#core/app';
import { ConfigStore, validateRaw } from '#core/config';
import type { Principal, RoleBinding } from '#core/rbac';
import { issueCertificate } from '#core/tls';
import { type BuiltCore, buildCore } from '../../../src/cli/core-services.ts';
import { gatehouseConfigSchema } from '../../../src/cli/config-schema.ts';
import { createKvDoor, type KvConfig, kvConfigSchema } from '../../../src/doors/kv/index.ts';

export const ISSUER = 'https://idp.test';
export const AUDIENCE = 'gatehouse-kv';

/** A local identity provider: an RSA key pair and a JWKS endpoint on 127.0.0.1. */
export interface TestIdp {
  readonly url: string;
  readonly publicJwk: JWK;
  readonly publicKeyPem: string;
  /** Signs a token with the IdP key; `claims` override the defaults (valid for 5 minutes). */
  sign(claims?: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>;
  fetches(): number;
  /** Holds key set requests unanswered until the returned function is called. */
  hold(): () => void;
  close(): Promise<void>;
}

export async function startIdp(): Promise<TestIdp> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  let fetches = 0;
  let held: (() => void)[] | undefined;
  const server: Server = createServer((_req, res) => {
    fetches += 1;
    const answer = () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [publicJwk] }));
    };
    if (held === undefined) answer();
    else held.push(answer);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const publicKeyPem = KeyObject.from(publicKey as webcrypto.CryptoKey).export({
    type: 'spki',
    format: 'pem',
  }) as string;
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    publicJwk,
    publicKeyPem,
    fetches: () => fetches,
    hold() {
      held ??= [];
      return () => {
        const waiting = held ?? [];
        held = undefined;
        for (const answer of waiting) answer();
      };
    },
    async sign(claims = {}, header = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'svc-a', iat: now, exp: now + 300, ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1', ...header })
        .sign(privateKey);
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

export interface KvGateway {
  readonly url: string;
  /** PEM of the development CA that signed the server certificate. */
  readonly ca: string;
  readonly home: string;
  readonly core: CoreServices;
  readonly built: BuiltCore;
  readonly door: ReturnType<typeof createKvDoor>;
  readonly idp: TestIdp;
  /** Swaps in a new kv section (the test's `kv` options merged with `raw`), as a reload does. */
  reloadKv(raw: Record<string, unknown>): void;
  /** What the gateway logged (level error and above), one JSON object per line. */
  logs(): string;
  /** A JWT from the test IdP carrying `roles` ("role:namespace" entries). */
  token(roles: readonly string[], claims?: Record<string, unknown>): Promise<string>;
  /** An API key with these bindings, created through the core's key API. */
  apiKey(bindings: readonly RoleBinding[]): Promise<string>;
  /** A client certificate from the development CA with a SPIFFE URI for `namespace`. */
  clientCertificate(namespace: string): Promise<{ readonly cert: string; readonly key: string }>;
  close(): Promise<void>;
}

export interface KvGatewayOptions {
  /** Raw `kv` section (merged over a listener on 127.0.0.1:0 and a memory driver). */
  readonly kv?: Record<string, unknown>;
  /** Raw `cache` section (e.g. Redis for shared limits). */
  readonly cache?: Record<string, unknown>;
}

/**
 * Starts the real core (SQLite in a temp data folder, real auth with a JWKS issuer and mTLS
 * rules, audit, metrics, limiters) and the kv door on 127.0.0.1:0 with its generated TLS
 * material, exactly as `gatehouse serve` composes them.
 */
export async function startKvGateway(options: KvGatewayOptions = {}): Promise<KvGateway> {
  const home = mkdtempSync(join(tmpdir(), 'gatehouse-kv-'));
  const idp = await startIdp();
  const raw = {
    home,
    log: { level: 'error' },
    server: { listen: '127.0.0.1:0' },
    ...(options.cache === undefined ? {} : { cache: options.cache }),
    auth: {
      adminPassword: 'correct horse battery staple',
      password: { scrypt: { ln: 10 } },
      jwks: [{ name: 'test-idp', url: idp.url, issuer: ISSUER, audiences: [AUDIENCE], rolesClaim: 'roles' }],
      mtls: {
        rules: [
          {
            match: 'SAN:URI:spiffe://gatehouse.test/ns/payments',
            principal: 'svc:payments',
            bindings: [{ role: 'operator', namespace: 'payments' }],
          },
        ],
      },
    },
  };
  const shutdown = new AbortController();
  const lines: string[] = [];
  // Captured instead of printed: tests read it (errorIds), and failures stay quiet in CI output.
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  // Checked before anything starts: a test of a refused kv section leaves nothing running.
  const kvRaw = { listen: '127.0.0.1:0', drivers: { embedded: { type: 'memory' } }, ...options.kv };
  let kvConfig: KvConfig;
  try {
    kvConfig = validateRaw(kvConfigSchema, kvRaw, 'test');
  } catch (error) {
    await idp.close();
    rmSync(home, { recursive: true, force: true });
    throw error;
  }
  let built: BuiltCore;
  try {
    const store = new ConfigStore(gatehouseConfigSchema, validateRaw(gatehouseConfigSchema, raw, 'test'));
    built = await buildCore({ store, cwd: home, shutdown: shutdown.signal, logStream });
  } catch (error) {
    await idp.close();
    rmSync(home, { recursive: true, force: true });
    throw error;
  }
  let currentKv = kvConfig;
  const listeners = new Set<(next: KvConfig, previous: KvConfig) => void>();
  // A reloadable section like the ConfigStore gives doors: tests swap it with `reloadKv`.
  const section: ConfigSection<KvConfig> = {
    current: () => currentKv,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  const door = createKvDoor(built.core, section);
  let caPem: string;
  let admin: Principal;
  try {
    await door.provision(built.core);
    await door.validate();
    await door.start();
    caPem = readFileSync(join(home, 'tls', 'ca.crt'), 'utf8');
    await built.auth.ensureAdmin();
    admin = await built.auth.authenticate({
      bearer: (await built.auth.login('admin', 'correct horse battery staple')).accessToken,
    });
  } catch (error) {
    // Nothing half-started outlives a failed start (its listener would keep the test running).
    await door.stop(AbortSignal.timeout(1000));
    await built.close();
    await idp.close();
    rmSync(home, { recursive: true, force: true });
    throw error;
  }
  let keys = 0;
  return {
    url: door.url,
    ca: caPem,
    home,
    core: built.core,
    built,
    door,
    idp,
    logs: () => lines.join(''),
    reloadKv(raw) {
      const previous = currentKv;
      currentKv = validateRaw(kvConfigSchema, { ...kvRaw, ...raw }, 'reload');
      for (const listener of listeners) listener(currentKv, previous);
    },
    token: (roles, claims = {}) => idp.sign({ roles, ...claims }),
    async apiKey(bindings) {
      keys += 1;
      return (await built.auth.keys.create(admin, { name: `kv-test-${keys}`, bindings })).secret;
    },
    async clientCertificate(namespace) {
      const issued = await issueCertificate({
        ca: { certPem: caPem, keyPem: readFileSync(join(home, 'tls', 'ca.key'), 'utf8') },
        uris: [`spiffe://gatehouse.test/ns/${namespace}`],
        usage: 'client',
        days: 1,
      });
      return { cert: issued.certPem, key: issued.keyPem };
    },
    async close() {
      shutdown.abort();
      await door.stop(AbortSignal.timeout(2000));
      built.auth.close();
      await built.close();
      await idp.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A TCP server on 127.0.0.1 that accepts and never answers: a backend that hangs every call. */
export interface Blackhole {
  readonly port: number;
  /** Resolves once a client has connected (at once when one already has). */
  connected(): Promise<void>;
  /** Resets every accepted connection, then stops listening. */
  close(): Promise<void>;
}

export async function startBlackhole(): Promise<Blackhole> {
  const sockets = new Set<NetSocket>();
  const server = createNetServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    connected: async () => {
      if (sockets.size === 0) await once(server, 'connection');
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
