import type { DetailedPeerCertificate, PeerCertificate } from 'node:tls';
import type { PeerCertificateInfo } from '#core/auth';

type NameObject = PeerCertificate['subject'];

function escapeValue(value: string): string {
  // RFC 4514 section 2.4.
  return value.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`).replace(/^[ #]|[ ]$/g, (c) => `\\${c}`);
}

/**
 * An RFC 4514 string from Node's subject object. Node keeps attributes in certificate order
 * (most general first), and RFC 4514 lists the most specific first, so the order is reversed.
 */
export function formatDistinguishedName(name: NameObject | undefined): string {
  if (name === undefined || name === null) return '';
  const parts: string[] = [];
  for (const [attribute, value] of Object.entries(name)) {
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) if (typeof v === 'string') parts.push(`${attribute}=${escapeValue(v)}`);
  }
  return parts.toReversed().join(',');
}

function decodeQuoted(raw: string): string {
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return raw;
  }
}

/**
 * Splits Node's `subjectaltname` text (`DNS:a, URI:b, IP Address:1.2.3.4`). Node prints a value
 * that holds a comma, quote or backslash as a JSON string (commas as `\u002c`), so quoted
 * parts are decoded as JSON and never split.
 */
export function splitSubjectAltNames(text: string | undefined): string[] {
  if (text === undefined || text === '') return [];
  const out: string[] = [];
  let current = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '"') {
      let raw = '';
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\') raw += text[i++] ?? '';
        raw += text[i++] ?? '';
      }
      current += decodeQuoted(raw);
      i++;
    } else if (c === ',' && text[i + 1] === ' ') {
      out.push(current);
      current = '';
      i += 2;
    } else {
      current += c;
      i++;
    }
  }
  if (current !== '') out.push(current);
  return out;
}

/**
 * Converts a verified Node peer certificate into the PeerCertificateInfo that the
 * Authenticator maps to a principal. Returns undefined when the peer sent no certificate.
 */
export function peerCertificateInfo(
  cert: PeerCertificate | DetailedPeerCertificate | undefined,
): PeerCertificateInfo | undefined {
  if (
    cert === undefined ||
    cert === null ||
    Object.keys(cert).length === 0 ||
    cert.fingerprint256 === undefined
  ) {
    return undefined;
  }
  return {
    subject: formatDistinguishedName(cert.subject),
    subjectAltNames: splitSubjectAltNames(cert.subjectaltname),
    fingerprint256: cert.fingerprint256,
    issuer: formatDistinguishedName(cert.issuer),
    validTo: cert.valid_to,
  };
}
