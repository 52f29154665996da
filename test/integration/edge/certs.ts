/**
 * Real certificates for edge tests, made by the openssl CLI: one CA and leaf certificates for
 * the names a test needs (wildcards allowed), written to a temporary folder.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Leaf {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface TestPki extends AsyncDisposable {
  readonly dir: string;
  readonly caFile: string;
  readonly ca: Buffer;
  /** Issues a leaf for `names` into `<label>.pem` / `<label>.key`. */
  issue(label: string, names: readonly string[]): Promise<Leaf>;
}

export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-pki-'));
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.pem');
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', caKey]);
  await run('openssl', [
    'req',
    '-x509',
    '-new',
    '-key',
    caKey,
    '-out',
    caFile,
    '-days',
    '2',
    '-subj',
    '/CN=Edge Test CA',
  ]);
  let serial = 1;
  return {
    dir,
    caFile,
    ca: await readFile(caFile),
    async issue(label, names) {
      const keyFile = join(dir, `${label}.key`);
      const csr = join(dir, `${label}.csr`);
      const certFile = join(dir, `${label}.pem`);
      const ext = join(dir, `${label}.ext`);
      const san = names.map((n) => (/^[0-9.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
      await writeFile(ext, `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
      await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${keyFile}.tmp`]);
      await run('openssl', [
        'req',
        '-new',
        '-key',
        `${keyFile}.tmp`,
        '-out',
        csr,
        '-subj',
        `/CN=${names[0] ?? label}`,
      ]);
      const args = ['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-out', `${certFile}.tmp`];
      await run('openssl', [...args, '-days', '2', '-extfile', ext, '-set_serial', String(serial++)]);
      // Renames make the swap atomic for the edge's file watcher.
      await run('mv', [`${keyFile}.tmp`, keyFile]);
      await run('mv', [`${certFile}.tmp`, certFile]);
      return { certFile, keyFile, cert: await readFile(certFile), key: await readFile(keyFile) };
    },
    async [Symbol.asyncDispose]() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}
