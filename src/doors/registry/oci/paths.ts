/**
 * Distribution / OCI distribution-spec paths under `/v2/`: `<uplink>/<repository>/manifests/<reference>`,
 * `…/blobs/<digest>` and `…/tags/list`, with the spec's repository-name, tag and digest grammars.
 */
import { GatewayError } from '#core/errors';

export type OciRequest =
  | { readonly kind: 'manifest'; readonly uplink: string; readonly repo: string; readonly reference: string }
  | { readonly kind: 'blob'; readonly uplink: string; readonly repo: string; readonly reference: string }
  | { readonly kind: 'tags'; readonly uplink: string; readonly repo: string };

// distribution-spec "Pulling manifests": name components, tag and digest grammars.
const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export const isDigest = (ref: string): boolean => DIGEST.test(ref);

const nameError = (name: string) =>
  new GatewayError('GW_ERR_REGISTRY_NAME_INVALID', {
    message: `Invalid repository name "${name.slice(0, 300)}"`,
    details: { ecosystem: 'oci' },
  });

/** Parses the path after `/v2/`; undefined for endpoints that are not served. */
export function parseOciPath(path: string): OciRequest | undefined {
  const m = /^(.+)\/(manifests|blobs)\/([^/]+)$/.exec(path) ?? /^(.+)\/(tags)\/(list)$/.exec(path);
  if (m === null) return undefined;
  const name = m[1] as string;
  const parts = name.split('/');
  if (parts.length < 2 || name.length > 255 || !parts.every((p) => COMPONENT.test(p))) throw nameError(name);
  const uplink = parts[0] as string;
  const repo = parts.slice(1).join('/');
  if (m[2] === 'tags') return { kind: 'tags', uplink, repo };
  const reference = m[3] as string;
  if (m[2] === 'blobs' || reference.includes(':')) {
    if (!DIGEST.test(reference))
      throw new GatewayError('GW_ERR_REGISTRY_DIGEST_INVALID', {
        message: `Invalid digest "${reference.slice(0, 200)}"`,
      });
  } else if (!TAG.test(reference))
    throw new GatewayError('GW_ERR_REGISTRY_DIGEST_INVALID', {
      message: `Invalid tag "${reference.slice(0, 200)}"`,
    });
  return { kind: m[2] === 'blobs' ? 'blob' : 'manifest', uplink, repo, reference };
}
