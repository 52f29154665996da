import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runGatewayCommand } from '#testing/start-gateway';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-config-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('gatehouse config validate and print', () => {
  it('accepts a valid document', async () => {
    const result = await runGatewayCommand([
      'config',
      'validate',
      file('ok.yaml', 'server:\n  listen: "[::1]:0"\n'),
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /valid/);
  });

  it('warns about unknown GATEHOUSE_* variables, in validate and at start, but not about the CLI own ones', async () => {
    const path = file('env.yaml', 'server:\n  listen: 127.0.0.1:0\n');
    const env = {
      GATEHOUSE_WROKERS: '4',
      GATEHOUSE_KV_URL: 'https://127.0.0.1:7443',
      GATEHOUSE_KV_CA: '/tmp/ca.pem',
      GATEHOUSE_PASSWORD: 'x',
    };
    const validate = await runGatewayCommand(['config', 'validate', path], { env });
    assert.equal(validate.code, 0, validate.stderr);
    assert.match(validate.stderr, /warning: Ignoring unknown environment variable "GATEHOUSE_WROKERS"/);
    assert.doesNotMatch(validate.stderr, /error:/);
    assert.doesNotMatch(validate.stderr, /GATEHOUSE_KV_URL|GATEHOUSE_KV_CA|GATEHOUSE_PASSWORD/);
    // serve logs it at start; a taken listen port then ends it.
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const { port } = busy.address() as AddressInfo;
    const home = join(dir, 'home-env');
    const serve = await runGatewayCommand(['serve', '--config', path, '--listen', `127.0.0.1:${port}`], {
      env: { ...env, GATEHOUSE_HOME: home, GATEHOUSE_KV_LISTEN: '127.0.0.1:0' },
      timeoutMs: 30_000,
    }).finally(() => busy.close());
    assert.notEqual(serve.code, 0);
    assert.match(serve.stderr + serve.stdout, /Ignoring unknown environment variable \\?"GATEHOUSE_WROKERS/);
    assert.doesNotMatch(serve.stderr + serve.stdout, /GATEHOUSE_KV_URL/);
  });

  it('reports every bad key at once, including addresses and CIDRs that do not parse', async () => {
    const text = 'server:\n  listen: nope\n  trustedProxies: ["10.0.0.0/99"]\nlog:\n  level: loud\n';
    const result = await runGatewayCommand(['config', 'validate', file('bad.yaml', text), '--json']);
    assert.equal(result.code, 2);
    const report = JSON.parse(result.stdout) as { valid: boolean; issues: { path: string }[] };
    assert.equal(report.valid, false);
    assert.deepEqual(report.issues.map((i) => i.path).sort(), [
      'log.level',
      'server.listen',
      'server.trustedProxies[0]',
    ]);
  });

  it('reports keys that only make sense together, and serve refuses before creating the data folder', async () => {
    const path = file('tls.yaml', 'server:\n  tls:\n    certFile: /nonexistent/cert.pem\n');
    const validate = await runGatewayCommand(['config', 'validate', path]);
    assert.equal(validate.code, 2);
    assert.match(validate.stderr, /server\.tls.*certFile and keyFile must be set together/);
    const home = join(dir, 'home-never-created');
    const serve = await runGatewayCommand(['serve', '--config', path], { env: { GATEHOUSE_HOME: home } });
    assert.equal(serve.code, 2);
    assert.ok(!existsSync(home), 'nothing was written');
  });

  it('refuses a registry policy that does not compile, as serve does, before creating the data folder', async () => {
    const policies = {
      'deny-range.yaml': [
        'registry:\n  policy:\n    rules:\n      - id: deny-foo\n        type: denyList\n',
        '        list:\n          entries:\n            - name: foo\n              versions: "not a range!!"\n',
      ].join(''),
      'duplicate-id.yaml':
        'registry:\n  policy:\n    rules:\n      - id: age\n        type: minimumAge\n      - id: age\n        type: minimumAge\n',
    };
    const problems: Record<string, RegExp> = {
      'deny-range.yaml':
        /registry\.policy.*List entry "foo" has versions "not a range!!" that are valid in none/,
      'duplicate-id.yaml': /registry\.policy.*Duplicate rule id "age"/,
    };
    for (const [name, text] of Object.entries(policies)) {
      const path = file(name, `server:\n  listen: 127.0.0.1:0\n${text}`);
      const validate = await runGatewayCommand(['config', 'validate', path]);
      assert.equal(validate.code, 2, `${name}: ${validate.stdout}`);
      assert.match(validate.stderr, problems[name] as RegExp);
      // Said as the problem, not as a missing value with the problem as what is expected.
      assert.doesNotMatch(validate.stderr, /missing; expected/, name);
      const json = await runGatewayCommand(['config', 'validate', path, '--json']);
      assert.equal((JSON.parse(json.stdout) as { valid: boolean }).valid, false);
      const home = join(dir, `home-${name}`);
      const serve = await runGatewayCommand(['serve', '--config', path], { env: { GATEHOUSE_HOME: home } });
      assert.equal(serve.code, 2, serve.stderr);
      assert.match(serve.stderr, problems[name] as RegExp);
      assert.doesNotMatch(serve.stderr, /missing; expected/, name);
      assert.ok(!existsSync(home), `${name}: serve wrote nothing`);
    }
  });

  it('prints the effective configuration with secrets redacted and environment overrides applied', async () => {
    const result = await runGatewayCommand(['config', 'print', '--json'], {
      env: {
        GATEHOUSE_STORAGE_URL: 'postgres://gatehouse:hunter2-secret@db.internal:5432/gatehouse',
        GATEHOUSE_SERVER_MAX_IN_FLIGHT: '77',
        GATEHOUSE_ADMIN_PASSWORD: 'a-long-admin-password',
      },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!result.stdout.includes('hunter2-secret'));
    assert.ok(!result.stdout.includes('a-long-admin-password'));
    const printed = JSON.parse(result.stdout) as {
      server: { maxInFlight: number };
      storage: { url: string };
    };
    assert.equal(printed.server.maxInFlight, 77);
    assert.equal(printed.storage.url, '[redacted]');
  });
});
