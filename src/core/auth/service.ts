import { join } from 'node:path';
import type { Clock } from '#core/clock';
import type { ConfigSection } from '#core/config';
import { GatewayError, isGatewayError } from '#core/errors';
import type { Logger } from '#core/log';
import type { Metrics } from '#core/metrics';
import { createMemoryRateLimiter, type RateLimiter } from '#core/ratelimit';
import {
  type BindingStore,
  changedSubjects,
  createBindingStore,
  type Principal,
  type RbacConfig,
  type RoleBinding,
} from '#core/rbac';
import { type Database, isUniqueViolation } from '#core/storage';
import { createAccessTokens } from './access-tokens.ts';
import { type ApiKey, type ApiKeys, createApiKeys, type CreateApiKeyInput } from './api-keys.ts';
import type { AuthConfig } from './config.ts';
import { createExternalValidator, type ExternalValidator } from './external-jwt.ts';
import { createCertificateMapper } from './mtls.ts';
import { createCachedBindingStore } from './cached-bindings.ts';
import { type CidrMatcher, createCidrMatcher } from './cidr.ts';
import { createCredentialAuthenticator, credentialMethod } from './authenticator.ts';
import { createKeyOperations } from './key-operations.ts';
import { randomPassword } from './password.ts';
import type { Authenticator, PeerCertificateInfo } from './port.ts';
import { createRefreshTokens } from './refresh-tokens.ts';
import { createSessions, type Sessions, type TokenPair } from './sessions.ts';
import { createPublicKeyDirectory } from './key-directory.ts';
import { openKeyRing } from './signing-keys.ts';
import { AUTH_MIGRATIONS } from './tables.ts';
import {
  type CreateUserInput,
  createUserStore,
  type UnlockResult,
  type UpdateUserInput,
  type User,
  type UserStore,
  userSubjects,
} from './users.ts';

export interface AuthServiceOptions {
  readonly db: Database;
  readonly clock: Clock;
  readonly log: Logger;
  /** The data folder; signing keys live in `<dataDir>/keys/`. */
  readonly dataDir: string;
  readonly config: AuthConfig;
  /** The dynamic `rbac` section whose bindings are merged with the stored ones. */
  readonly rbac?: ConfigSection<RbacConfig>;
  /** Counters of logins and authentications; optional so tests and tools can omit them. */
  readonly metrics?: Metrics;
  /** Per-address limiter for login attempts (used by the routes). */
  readonly limiters?: { readonly login?: RateLimiter };
  /**
   * Per-role address allow-lists (`server.roleAllowedCidrs`), read on every authentication so a
   * reload applies at once. Applied here, not only by the HTTP server, so that every door that
   * authenticates (the kv door's own listener too) drops the same roles.
   */
  readonly roleAllowedCidrs?: () => Readonly<Record<string, readonly string[]>>;
}

/** The identity service: an Authenticator plus user, key, token and binding management. */
export interface AuthService extends Authenticator {
  readonly config: AuthConfig;
  readonly bindings: BindingStore;
  /** Per-address login limiter: the one passed in, or an in-memory one from `auth.loginRate`. */
  readonly loginLimiter: RateLimiter;
  /**
   * Password login. Failures back off and lock per account and `clientIp` (callers without a
   * client address, such as tools, all count as one address) and back off account-wide.
   */
  login(
    username: string,
    password: string,
    clientIp?: string,
  ): Promise<TokenPair & { readonly userId: string }>;
  /** Re-checks a user's password (same backoff and lockout as login) without starting a session. */
  checkPassword(username: string, password: string, clientIp?: string): Promise<void>;
  /**
   * Clears every failed-login counter and lock of a user, all addresses and account-wide
   * (`gatehouse users unlock`); GW_ERR_USER_NOT_FOUND for an unknown id or name.
   */
  unlock(idOrName: string): Promise<UnlockResult>;
  refresh(refreshToken: string): Promise<TokenPair>;
  logout(refreshToken: string): Promise<{ readonly familyId: string; readonly userId: string }>;
  /** Ends the session an access-token principal belongs to. */
  logoutPrincipal(principal: Principal): Promise<void>;
  /** Creates `admin` with the given, configured or a random password, only when no user exists. */
  ensureAdmin(options?: { readonly password?: string }): Promise<{
    readonly created: boolean;
    readonly username: string;
    readonly password?: string;
    readonly generated?: boolean;
  }>;
  readonly users: {
    create(input: CreateUserInput, actor: string): Promise<User>;
    list(): Promise<User[]>;
    get(idOrName: string): Promise<User>;
    update(idOrName: string, input: UpdateUserInput, actor: string): Promise<User>;
    delete(idOrName: string): Promise<void>;
    setPassword(idOrName: string, password: string): Promise<void>;
  };
  readonly keys: {
    create(
      creator: Principal,
      input: CreateApiKeyInput,
    ): Promise<{ readonly key: ApiKey; readonly secret: string }>;
    list(viewer: Principal): Promise<ApiKey[]>;
    get(viewer: Principal, id: string): Promise<ApiKey>;
    revoke(actor: Principal, id: string): Promise<ApiKey>;
  };
  /** The public JWK set: the signing keys of every replica that may still verify a token. */
  jwks(): Promise<{ readonly keys: readonly object[] }>;
  rotateSigningKey(): Promise<string>;
  principalFromCertificate(info: PeerCertificateInfo): Promise<Principal>;
  close(): void;
}

// The address failures are counted under when a caller (a tool, a test) gives none.
const NO_CLIENT_ADDRESS = 'none';

/** Creates `admin` with `given` or a random password, only when no user exists yet. */
async function bootstrapAdmin(users: UserStore, given: string | undefined, log: Logger) {
  if ((await users.count()) > 0) return { created: false, username: 'admin' };
  const password = given ?? randomPassword(24);
  try {
    await users.create({ username: 'admin', password, roles: [{ role: 'admin', namespace: '*' }] }, 'system');
  } catch (error) {
    // Another replica bootstrapped at the same moment.
    if (isUniqueViolation(error) || (error as GatewayError).code === 'GW_ERR_USER_EXISTS') {
      return { created: false, username: 'admin' };
    }
    throw error;
  }
  log.info('Bootstrapped the admin account', { username: 'admin', generatedPassword: given === undefined });
  return { created: true, username: 'admin', password, generated: given === undefined };
}

/** Signing keys (local private keys, shared public keys) and the access-token codec. */
async function openTokenKeys(options: AuthServiceOptions) {
  const { db, clock, log, config } = options;
  const directory = createPublicKeyDirectory({ db, clock, retainFor: config.accessTokenTtl });
  const keyRing = await openKeyRing({
    dir: join(options.dataDir, 'keys'),
    clock,
    log,
    rotateAfter: config.signingKeyRotation,
    retainFor: config.accessTokenTtl,
    directory,
  });
  const access = createAccessTokens({
    keys: keyRing,
    clock,
    issuer: config.issuer,
    audience: config.audience,
    ttlMs: config.accessTokenTtl,
    lookup: (kid) => directory.lookup(kid),
  });
  const jwks = async () => {
    const shared = await directory.list();
    const local = keyRing.jwks().keys.filter((k) => !shared.some((s) => s.kid === k.kid));
    return { keys: [...shared, ...local] };
  };
  return { keyRing, access, jwks };
}

const isGlobalAdmin = (roles: readonly { role: string; namespace: string }[]) =>
  roles.some((b) => b.role === 'admin' && b.namespace === '*');

/** Refuses a change that would leave no enabled global admin: nobody could manage users again. */
async function keepAnAdmin(
  users: UserStore,
  target: User,
  after: { disabled: boolean; roles: readonly RoleBinding[] },
) {
  if (!isGlobalAdmin(target.roles) || target.disabled) return;
  if (!after.disabled && isGlobalAdmin(after.roles)) return;
  const others = (await users.list()).filter(
    (u) => u.id !== target.id && !u.disabled && isGlobalAdmin(u.roles),
  );
  if (others.length === 0) {
    throw new GatewayError('GW_ERR_USER_LAST_ADMIN', {
      message: `"${target.username}" is the last enabled administrator`,
    });
  }
}

/** Runs the calls given to it one after another (a failed one does not stop the next). */
type Serial = <T>(fn: () => Promise<T>) => Promise<T>;

/**
 * One at a time: the changes that could remove the last administrator check and then write, and
 * two of them run side by side (two admins disabling each other) both saw the other still there.
 */
function serial(): Serial {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

/**
 * The binding store the API writes through: revoking a stored global admin binding of a user
 * is refused when that user is the last enabled administrator, as `users.update` refuses the
 * same demotion (DELETE /api/role-bindings left a gateway nobody could administer).
 */
function guardLastAdmin(bindings: BindingStore, users: UserStore, exclusive: Serial): BindingStore {
  return {
    resolve: (subjects) => bindings.resolve(subjects),
    list: (subject) => bindings.list(subject),
    grant: (subject, binding, actor) => bindings.grant(subject, binding, actor),
    revoke: (subject, binding) => exclusive(() => revokeKeepingAnAdmin(subject, binding)),
    replace: (subject, list, actor) => bindings.replace(subject, list, actor),
    setConfigBindings: (list) => bindings.setConfigBindings(list),
    close: () => bindings.close(),
  };

  async function revokeKeepingAnAdmin(subject: string, binding: RoleBinding): Promise<boolean> {
    if (isGlobalAdmin([binding]) && subject.startsWith('user:')) {
      const target = await users.get(subject.slice('user:'.length)).catch((error: unknown) => {
        if (isGatewayError(error) && error.code === 'GW_ERR_USER_NOT_FOUND') return undefined;
        throw error;
      });
      if (target !== undefined) {
        // What the user keeps: every binding of its subjects (by id, by name, from the
        // configuration) except the stored one being revoked.
        const kept = (
          await Promise.all(userSubjects(target.id, target.username).map((s) => bindings.list(s)))
        )
          .flat()
          .filter((b) => !(b.subject === subject && b.source === 'database' && isGlobalAdmin([b])));
        await keepAnAdmin(users, target, { disabled: target.disabled, roles: kept });
      }
    }
    return bindings.revoke(subject, binding);
  }
}

/** User management that ends sessions and keys when access must stop at once. */
function userOperations(
  users: UserStore,
  sessions: Sessions,
  apiKeys: ApiKeys,
  exclusive: Serial,
): AuthService['users'] {
  return {
    create: (input, actor) => users.create(input, actor),
    list: () => users.list(),
    get: (id) => users.get(id),
    update: (id, input, actor) => exclusive(() => update(id, input, actor)),
    delete: (id) => exclusive(() => remove(id)),
    async setPassword(id, password) {
      const row = await users.setPassword(id, password);
      await sessions.revokeUser(row.id);
    },
  };

  async function update(id: string, input: UpdateUserInput, actor: string): Promise<User> {
    const before = await users.get(id);
    await keepAnAdmin(users, before, {
      disabled: input.disabled ?? before.disabled,
      roles: input.roles ?? before.roles,
    });
    const user = await users.update(id, input, actor);
    // Access tokens carry roles: changed roles or a disabled account end every session.
    if (input.disabled === true || input.roles !== undefined) await sessions.revokeUser(user.id);
    // The owner's keys were cached with the account's state; re-read them on the next use.
    if (input.disabled !== undefined) apiKeys.forgetOwner(user.id);
    return user;
  }

  async function remove(id: string): Promise<void> {
    await keepAnAdmin(users, await users.get(id), { disabled: true, roles: [] });
    const row = await users.delete(id);
    await sessions.revokeUser(row.id);
    await apiKeys.revokeOwner(row.id);
  }
}

const roleMatchers = new WeakMap<readonly string[], CidrMatcher>();

/** True when `ip` is in one of `cidrs`; no address, or one that does not parse, is in none. */
function addressIn(ip: string | undefined, cidrs: readonly string[]): boolean {
  if (ip === undefined) return false;
  let matcher = roleMatchers.get(cidrs);
  if (matcher === undefined) {
    matcher = createCidrMatcher(cidrs);
    roleMatchers.set(cidrs, matcher);
  }
  try {
    return matcher.matches(ip);
  } catch {
    return false;
  }
}

/**
 * Drops the bindings whose role may not be used from `clientIp` (`server.roleAllowedCidrs`); the
 * principal keeps its other bindings, so an admin outside the admin network is still, say, a
 * reader there. Every caller of `authenticate` gets it: the HTTP API and the kv door alike.
 */
export function restrictRoles(
  principal: Principal,
  clientIp: string | undefined,
  roleCidrs: Readonly<Record<string, readonly string[]>>,
): { readonly principal: Principal; readonly dropped: readonly string[] } {
  const dropped: string[] = [];
  const bindings = principal.bindings.filter((b) => {
    const cidrs = Object.hasOwn(roleCidrs, b.role) ? roleCidrs[b.role] : undefined;
    if (cidrs === undefined || addressIn(clientIp, cidrs)) return true;
    dropped.push(b.role);
    return false;
  });
  return dropped.length === 0 ? { principal, dropped } : { principal: { ...principal, bindings }, dropped };
}

/** Wraps login and authenticate with outcome counters. */
function instrument(
  metrics: Metrics | undefined,
  login: AuthService['login'],
  authenticate: AuthService['authenticate'],
): Pick<AuthService, 'login' | 'authenticate'> {
  if (metrics === undefined) return { login, authenticate };
  const logins = metrics.counter({
    name: 'gatehouse_auth_logins_total',
    help: 'Password logins by outcome (ok or the error code)',
    labelNames: ['outcome'],
  });
  const authentications = metrics.counter({
    name: 'gatehouse_auth_authentications_total',
    help: 'Request authentications by credential method and outcome (ok or the error code)',
    labelNames: ['method', 'outcome'],
  });
  const outcome = (error: unknown) => (isGatewayError(error) ? error.code : 'GW_ERR_INTERNAL');
  return {
    async login(username, password, clientIp) {
      try {
        const result = await login(username, password, clientIp);
        logins.inc({ outcome: 'ok' });
        return result;
      } catch (error) {
        logins.inc({ outcome: outcome(error) });
        throw error;
      }
    },
    async authenticate(credentials) {
      const method = credentialMethod(credentials);
      try {
        const principal = await authenticate(credentials);
        authentications.inc({ method, outcome: 'ok' });
        return principal;
      } catch (error) {
        authentications.inc({ method, outcome: outcome(error) });
        throw error;
      }
    },
  };
}

/** Opens the identity service: migrations, signing keys, and the admin-facing operations. */
export async function createAuthService(options: AuthServiceOptions): Promise<AuthService> {
  const { db, clock, log, config } = options;
  await db.migrate({ module: 'core-auth', migrations: AUTH_MIGRATIONS });
  const rbac = options.rbac === undefined ? {} : { config: options.rbac };
  const bindings = createCachedBindingStore(await createBindingStore({ db, clock, ...rbac }), {
    clock,
    ttlMs: config.cacheTtl,
    ...rbac,
  });
  const { keyRing, access, jwks } = await openTokenKeys(options);
  const exclusive = serial();
  const refresh = createRefreshTokens({ db, clock, ttlMs: config.refreshTokenTtl });
  const userStore = createUserStore({ db, clock, bindings, password: config.password });
  const apiKeys = createApiKeys({ db, clock, cacheTtlMs: config.cacheTtl });
  const sessions = await createSessions({ users: userStore, bindings, access, refresh, clock, config });
  const { authenticate, principalFromCertificate } = createCredentialAuthenticator({
    issuer: config.issuer,
    apiKeys,
    users: userStore,
    sessions,
    bindings,
    external: new Map<string, ExternalValidator>(
      config.jwks.map((j) => [j.issuer, createExternalValidator(j, clock, log.child({ issuer: j.name }))]),
    ),
    mapCertificate: createCertificateMapper(config.mtls.rules),
  });
  const counted = instrument(
    options.metrics,
    (u, p, ip) => sessions.login(u, p, ip ?? NO_CLIENT_ADDRESS),
    authenticate,
  );
  // Principals resolve their bindings on every request (sessions and keys included), so a reload
  // needs no revocation; the log names whom it changed (the reload itself is audited).
  const unsubscribe = options.rbac?.subscribe((next, previous) => {
    const subjects = changedSubjects(next, previous);
    if (subjects.length > 0) {
      log.info('Configuration role bindings changed; they apply from the next request', { subjects });
    }
  });
  return {
    config,
    bindings: guardLastAdmin(bindings, userStore, exclusive),
    loginLimiter:
      options.limiters?.login ??
      createMemoryRateLimiter({ rate: config.loginRate.rate / 60, burst: config.loginRate.burst, clock }),
    async authenticate(credentials) {
      const principal = await counted.authenticate(credentials);
      const roleCidrs = options.roleAllowedCidrs?.();
      if (roleCidrs === undefined) return principal;
      const restricted = restrictRoles(principal, credentials.clientIp, roleCidrs);
      if (restricted.dropped.length > 0)
        log.info('Role bindings not usable from this address', {
          principal: principal.id,
          clientIp: credentials.clientIp,
          roles: restricted.dropped,
        });
      return restricted.principal;
    },
    login: counted.login,
    async checkPassword(username, password, clientIp) {
      await sessions.checkPassword(username, password, clientIp ?? NO_CLIENT_ADDRESS);
    },
    unlock: (idOrName) => userStore.unlock(idOrName),
    refresh: (token) => sessions.refresh(token),
    logout: (token) => sessions.logout(token),
    async logoutPrincipal(principal) {
      const sid = (principal as { sessionId?: unknown }).sessionId;
      if (typeof sid === 'string') await sessions.logoutSession(sid);
    },
    ensureAdmin: (input = {}) => bootstrapAdmin(userStore, input.password ?? config.adminPassword, log),
    users: userOperations(userStore, sessions, apiKeys, exclusive),
    keys: createKeyOperations(apiKeys),
    jwks,
    rotateSigningKey: async () => (await keyRing.rotate()).kid,
    principalFromCertificate,
    close() {
      unsubscribe?.();
      bindings.close();
    },
  };
}
