import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A CA and leaf certificates made by the `openssl` command line, for signing tests. */
export interface TestPki {
  readonly dir: string;
  readonly rootPem: string;
  /** Issues a P-256 leaf; `codeSigning` adds the EKU; returns PEMs of key and certificate. */
  leaf(
    cn: string,
    options?: { readonly codeSigning?: boolean; readonly days?: number; readonly ca?: 'root' | 'other' },
  ): { keyPem: string; certPem: string };
  close(): void;
}

function openssl(dir: string, args: readonly string[]): void {
  execFileSync('openssl', [...args], { cwd: dir, stdio: 'pipe' });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  openssl(dir, [
    'req',
    '-x509',
    '-new',
    '-key',
    `${name}.key`,
    '-subj',
    `/CN=${name}`,
    '-days',
    '30',
    '-out',
    `${name}.pem`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
  ]);
}

/** Creates a root CA (and an untrusted second CA) in a temporary folder. */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'gh-pki-'));
  makeCa(dir, 'root');
  makeCa(dir, 'other');
  let n = 0;
  return {
    dir,
    rootPem: readFileSync(join(dir, 'root.pem'), 'utf8'),
    leaf(cn, options = {}) {
      n += 1;
      const ca = options.ca ?? 'root';
      openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `leaf${n}.ec`]);
      openssl(dir, ['pkcs8', '-topk8', '-nocrypt', '-in', `leaf${n}.ec`, '-out', `leaf${n}.key`]);
      openssl(dir, ['req', '-new', '-key', `leaf${n}.key`, '-subj', `/CN=${cn}`, '-out', `leaf${n}.csr`]);
      const ext = [
        'keyUsage=critical,digitalSignature',
        ...(options.codeSigning === false ? [] : ['extendedKeyUsage=codeSigning']),
        `subjectAltName=email:${cn}`,
      ];
      writeFileSync(join(dir, `leaf${n}.ext`), `${ext.join('\n')}\n`);
      openssl(dir, [
        'x509',
        '-req',
        '-in',
        `leaf${n}.csr`,
        '-CA',
        `${ca}.pem`,
        '-CAkey',
        `${ca}.key`,
        '-CAcreateserial',
        '-days',
        String(options.days ?? 7),
        '-extfile',
        `leaf${n}.ext`,
        '-out',
        `leaf${n}.pem`,
      ]);
      return {
        keyPem: readFileSync(join(dir, `leaf${n}.key`), 'utf8'),
        certPem: readFileSync(join(dir, `leaf${n}.pem`), 'utf8'),
      };
    },
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}
