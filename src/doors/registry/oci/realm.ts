/**
 * Where an OCI uplink's credentials may go when its `WWW-Authenticate: Bearer realm=…` challenge
 * names a token service. The realm is chosen by whatever answered the challenge, so without a
 * check the configured user and password would follow it to any host, over plain http too, or to
 * an internal address (server-side request forgery).
 */
import { isIP } from 'node:net';
import { getPublicSuffix } from 'tldts';

/**
 * Whether `realm` may be asked for a token with the uplink's credentials; `undefined` when it
 * may, else why not.
 *
 * - Plain http is refused for an https uplink: the credentials would cross the network in clear
 *   text where the uplink itself protects them (the distribution token spec sends them as Basic).
 * - The uplink's own origin is always allowed: it may ask for the same credentials with a Basic
 *   challenge anyway.
 * - `allowed` (the uplink's `tokenRealmOrigins`), when not empty, is the complete list of other
 *   origins.
 * - Otherwise the realm's host must be the uplink's host (any port) or lie in the uplink host's
 *   parent domain (`auth.example.test` or `example.test` for `registry.example.test`), as registries
 *   that run their token service on a separate host do. The parent must not be a public suffix
 *   (Public Suffix List, its private section included: `co.uk`, `github.io`, `s3.amazonaws.com`),
 *   where other people's hosts live, and an IP address has no parent, so `example.co.uk` or
 *   `team.github.io` allows only itself.
 */
export function realmRefusal(uplinkUrl: string, allowed: readonly string[], realm: URL): string | undefined {
  const uplink = new URL(uplinkUrl);
  if (realm.protocol !== 'https:' && realm.protocol !== 'http:') return 'it is not an http(s) URL';
  if (uplink.protocol === 'https:' && realm.protocol === 'http:')
    return 'it is plain http while the uplink is https, so the credentials would travel unencrypted';
  if (realm.origin === uplink.origin) return undefined;
  if (allowed.length > 0) {
    return allowed.includes(realm.origin)
      ? undefined
      : `its origin "${realm.origin}" is not in the uplink's tokenRealmOrigins`;
  }
  return sameDomain(uplink.hostname, realm.hostname)
    ? undefined
    : `its origin "${realm.origin}" is outside the uplink's domain; list it in the uplink's tokenRealmOrigins to allow it`;
}

function sameDomain(uplinkHost: string, realmHost: string): boolean {
  if (uplinkHost === realmHost) return true;
  if (isIP(uplinkHost.replace(/^\[|\]$/g, '')) !== 0) return false;
  const labels = uplinkHost.split('.');
  if (labels.length < 3) return false;
  const parent = labels.slice(1).join('.');
  if (getPublicSuffix(parent, { allowPrivateDomains: true }) === parent) return false;
  return realmHost === parent || realmHost.endsWith(`.${parent}`);
}

/** The configured origins in the form `URL#origin` gives (lower-case host, no default port). */
export const normalizeOrigins = (origins: readonly string[]): string[] =>
  origins.map((o) => new URL(o).origin);
