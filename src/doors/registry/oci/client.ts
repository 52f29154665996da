/**
 * An uplink client for OCI registries: the Distribution token flow (a 401 with
 * `WWW-Authenticate: Bearer realm=…,service=…,scope=…` is answered by fetching a token from the
 * realm, with the configured user and password as Basic credentials, and retrying with it), HTTP
 * Basic for registries that ask for it, token reuse until `expires_in`, and blob redirects to
 * storage hosts (followed without credentials). A realm is asked only where `realm.ts` allows
 * it: never plain http for an https uplink, and only on the uplink's domain or its
 * `tokenRealmOrigins`.
 */
import { GatewayError } from '#core/errors';
import type { UplinkConfig } from '../config.ts';
import {
  UplinkClient,
  type UplinkClientOptions,
  type UplinkRequest,
  type UplinkResponse,
} from '../uplink/client.ts';
import { normalizeOrigins, realmRefusal } from './realm.ts';

interface Challenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Parses one `WWW-Authenticate` challenge (RFC 9110 §11.6.1), as registries send it. */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(header ?? '');
  if (m === null) return undefined;
  const params: Record<string, string> = {};
  for (const p of (m[2] ?? '').matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g))
    params[(p[1] as string).toLowerCase()] = p[2] ?? p[3] ?? '';
  return { scheme: (m[1] as string).toLowerCase(), params };
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const TOKEN_LIMIT = 1 << 16;

export class OciUplinkClient extends UplinkClient {
  readonly #basic: string | undefined;
  readonly #tokens = new Map<string, { token: string; until: number }>();
  readonly #now: () => number;
  readonly #realmOrigins: readonly string[];

  constructor(options: UplinkClientOptions) {
    const c = options.config;
    // Credentials are used by the challenge flow only; the base client must not send them itself.
    const { username, password, token, ...rest } = c;
    super({ ...options, config: rest as UplinkConfig });
    this.#basic =
      username === undefined
        ? undefined
        : `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`;
    this.#now = () => options.clock.now();
    this.#realmOrigins = normalizeOrigins(c.tokenRealmOrigins);
    if (token !== undefined) this.#tokens.set('*', { token, until: Number.POSITIVE_INFINITY });
  }

  override async request(req: UplinkRequest): Promise<UplinkResponse> {
    const scopeKey = req.headers?.['x-oci-scope'] ?? '*';
    const headers = { ...req.headers };
    delete headers['x-oci-scope'];
    const cached = this.#tokens.get(scopeKey) ?? this.#tokens.get('*');
    const authorized = (auth: string | undefined) => ({
      ...req,
      headers: auth === undefined ? headers : { ...headers, authorization: auth },
    });
    const first = cached !== undefined && cached.until > this.#now() ? `Bearer ${cached.token}` : undefined;
    let res = await super.request(authorized(first));
    if (res.status === 401) {
      const challenge = parseChallenge(String(res.headers['www-authenticate'] ?? ''));
      await res.body.dump().catch(() => undefined);
      const auth = await this.#answer(challenge, scopeKey, req.what);
      res = await super.request(authorized(auth));
      if (res.status === 401 || res.status === 403) {
        await res.body.dump().catch(() => undefined);
        throw this.#authError(req.what, `status ${res.status} with the credentials`);
      }
    }
    for (let hops = 0; REDIRECTS.has(res.status) && hops < 3; hops++) {
      const location = res.headers['location'];
      await res.body.dump().catch(() => undefined);
      if (typeof location !== 'string') break;
      // Storage hosts get no registry credentials (signed URLs carry their own).
      res = await super.request({ ...req, headers, url: new URL(location, res.url).toString() });
    }
    return res;
  }

  async #answer(challenge: Challenge | undefined, scopeKey: string, what: string): Promise<string> {
    if (challenge?.scheme === 'basic') {
      if (this.#basic === undefined)
        throw this.#authError(what, 'the registry asks for credentials and none are configured');
      return this.#basic;
    }
    const realm = challenge?.params['realm'];
    if (challenge?.scheme !== 'bearer' || realm === undefined || !/^https?:\/\//.test(realm))
      throw this.#authError(what, 'the registry sent no usable Bearer challenge');
    const url = new URL(realm);
    const refused = realmRefusal(this.config.url, this.#realmOrigins, url);
    if (refused !== undefined) {
      throw new GatewayError('GW_ERR_REGISTRY_UPLINK_AUTH', {
        message: `Uplink "${this.name}" named the token realm "${url.origin}${url.pathname}" for "${what}", which Gatehouse refused: ${refused}`,
        details: { uplink: this.name, realm: url.origin },
      });
    }
    if (challenge.params['service'] !== undefined)
      url.searchParams.set('service', challenge.params['service']);
    if (challenge.params['scope'] !== undefined) url.searchParams.set('scope', challenge.params['scope']);
    const res = await super.request({
      url: url.toString(),
      what: `token for ${what}`,
      headers: this.#basic === undefined ? {} : { authorization: this.#basic },
    });
    const body: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > TOKEN_LIMIT) break;
      body.push(chunk as Buffer);
    }
    if (res.status !== 200 || size > TOKEN_LIMIT)
      throw this.#authError(what, `the token realm answered status ${res.status}`);
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(Buffer.concat(body).toString('utf8')) as typeof doc;
    } catch {
      throw this.#authError(what, 'the token realm answered no JSON');
    }
    const token = typeof doc.token === 'string' ? doc.token : doc.access_token;
    if (typeof token !== 'string' || token === '')
      throw this.#authError(what, 'the token realm answered no token');
    // Distribution's token spec: 60 seconds when `expires_in` is absent; refresh 10 seconds early.
    const ttl = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    this.#tokens.set(scopeKey, { token, until: this.#now() + Math.max(0, ttl - 10) * 1000 });
    return `Bearer ${token}`;
  }

  #authError(what: string, why: string): GatewayError {
    return new GatewayError('GW_ERR_REGISTRY_UPLINK_AUTH', {
      message: `Uplink "${this.name}" refused access to "${what}": ${why}`,
      details: { uplink: this.name },
    });
  }
}
