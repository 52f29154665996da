import { GatewayError } from '#core/errors';
import type { Principal, RoleBinding } from '#core/rbac';
import type { PeerCertificateInfo } from './port.ts';
import type { MtlsRule } from './config.ts';

interface CompiledRule {
  readonly kind: 'SAN' | 'CN';
  /** For SAN rules the SAN type prefix, e.g. `URI:`. */
  readonly sanPrefix: string;
  readonly pattern: RegExp;
  readonly rule: MtlsRule;
}

const NAMESPACE = /^(\*|[A-Za-z0-9][A-Za-z0-9._\-/]{0,252})$/;

function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      source += '(.+)';
      i++;
    } else if (c === '*') {
      // One path segment: a SPIFFE namespace must not swallow "/sa/…".
      source += '([^/]+)';
    } else {
      source += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}

function compile(rule: MtlsRule): CompiledRule {
  if (rule.match.startsWith('CN:')) {
    return { kind: 'CN', sanPrefix: '', pattern: globToRegExp(rule.match.slice(3)), rule };
  }
  const rest = rule.match.slice(4);
  const colon = rest.indexOf(':');
  return {
    kind: 'SAN',
    sanPrefix: rest.slice(0, colon + 1),
    pattern: globToRegExp(rest.slice(colon + 1)),
    rule,
  };
}

/** The CN of an RFC 4514 subject (honouring `\,` escapes), or undefined. */
export function commonName(subject: string): string | undefined {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < subject.length; i++) {
    const c = subject[i] as string;
    if (c === '\\' && i + 1 < subject.length) {
      current += subject[i + 1];
      i++;
    } else if (c === ',' || c === '+') {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  const cn = parts.find((p) => p.trimStart().toUpperCase().startsWith('CN='));
  return cn === undefined ? undefined : cn.trimStart().slice(3);
}

function substitute(template: string, captures: readonly string[]): string {
  return template.replace(/\$(\d)/g, (_m, n: string) => captures[Number(n) - 1] ?? '');
}

function candidates(rule: CompiledRule, info: PeerCertificateInfo): string[] {
  if (rule.kind === 'CN') {
    const cn = commonName(info.subject);
    return cn === undefined ? [] : [cn];
  }
  return info.subjectAltNames
    .filter((s) => s.startsWith(rule.sanPrefix))
    .map((s) => s.slice(rule.sanPrefix.length));
}

/**
 * Maps verified client certificates to principals with the first matching rule. Fails closed:
 * a certificate that no rule maps, or whose captures would produce an unusable principal, is
 * refused with GW_ERR_AUTH_CERT_INVALID.
 */
export function createCertificateMapper(rules: readonly MtlsRule[]) {
  const compiled = rules.map(compile);
  return (info: PeerCertificateInfo): Principal => {
    for (const rule of compiled) {
      for (const value of candidates(rule, info)) {
        const m = rule.pattern.exec(value);
        if (m === null) continue;
        const captures = m.slice(1);
        const name = substitute(rule.rule.principal, captures);
        const bindings: RoleBinding[] = rule.rule.bindings.map((b) => ({
          role: b.role,
          namespace: substitute(b.namespace, captures),
        }));
        // A capture can never widen a binding to every namespace or smuggle in an invalid name.
        const widened = bindings.some(
          (b, i) =>
            !NAMESPACE.test(b.namespace) || (b.namespace === '*' && rule.rule.bindings[i]?.namespace !== '*'),
        );
        if (widened || name === '') continue;
        return { id: `cert:${name}`, kind: 'certificate', name, bindings };
      }
    }
    throw new GatewayError('GW_ERR_AUTH_CERT_INVALID', {
      message: 'The client certificate maps to no principal',
      details: { fingerprint256: info.fingerprint256 },
    });
  };
}
