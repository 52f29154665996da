/**
 * The commands that act on the data folder (`vulndb import`, and `vulndb status` and `audit
 * verify` without a server): they never create an empty database, and a server named by
 * --server, GATEHOUSE_URL or the saved login is used or refused, never ignored.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type GatewayProcess, runGatewayCommand, startGatewayProcess } from '#testing/start-gateway';

const ADMIN_PASSWORD = 'local-admin-password-123';
const root = mkdtempSync(join(tmpdir(), 'gatehouse-cli-local-'));
const osv = join(root, 'osv');
let gw: GatewayProcess;

before(async () => {
  mkdirSync(osv);
  const record = {
    id: 'GHSA-test-0001',
    modified: '2024-01-01T00:00:00Z',
    published: '2024-01-01T00:00:00Z',
    affected: [
      {
        package: { ecosystem: 'npm', name: 'left-pad-test' },
        ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.0.1' }] }],
      },
    ],
  };
  writeFileSync(join(osv, 'GHSA-test-0001.json'), JSON.stringify(record));
  gw = await startGatewayProcess({ env: { GATEHOUSE_ADMIN_PASSWORD: ADMIN_PASSWORD } });
});
after(async () => {
  await gw[Symbol.asyncDispose]();
  rmSync(root, { recursive: true, force: true });
});

/** An empty working directory and config home (no saved login). */
function emptyPlace(name: string) {
  const cwd = join(root, name);
  mkdirSync(cwd);
  const env = { XDG_CONFIG_HOME: cwd, HOME: cwd };
  return { cwd, env };
}

describe('gatehouse commands on the data folder', () => {
  it('refuse, naming the folder, when it holds no database, and create nothing', async () => {
    const { cwd, env } = emptyPlace('empty');
    for (const args of [
      ['vulndb', 'import', osv],
      ['vulndb', 'status'],
      ['audit', 'verify'],
    ]) {
      const run = await runGatewayCommand(args, { cwd, env });
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
      assert.match(
        run.stderr,
        new RegExp(`No Gatehouse database ".*" in the data folder "${cwd}/\\.gatehouse"`),
      );
      assert.match(run.stderr, /--config FILE, GATEHOUSE_CONFIG or GATEHOUSE_HOME/);
      assert.doesNotMatch(run.stdout, /imported|verified|advisories/);
    }
    assert.deepEqual(readdirSync(cwd), [], 'no .gatehouse was created');
  });

  it('vulndb import refuses a server from --server, GATEHOUSE_URL or the saved login instead of ignoring it', async () => {
    const { cwd, env } = emptyPlace('remote-import');
    const flag = await runGatewayCommand(['vulndb', 'import', osv, '--server', gw.url], { cwd, env });
    const variable = await runGatewayCommand(['vulndb', 'import', osv], {
      cwd,
      env: { ...env, GATEHOUSE_URL: gw.url },
    });
    for (const [run, via] of [
      [flag, '--server'],
      [variable, 'GATEHOUSE_URL'],
    ] as const) {
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, new RegExp(`cannot act through a server \\(${via} names ${gw.url}\\)`));
    }
    assert.ok(!existsSync(join(cwd, '.gatehouse')));
  });

  it('vulndb status and audit verify act through the server of the saved login; import into its folder works', async () => {
    const { cwd, env } = emptyPlace('logged-in');
    const login = await runGatewayCommand(['login', '--server', gw.url, '--username', 'admin'], {
      cwd,
      env: { ...env, GATEHOUSE_PASSWORD: ADMIN_PASSWORD },
    });
    assert.equal(login.code, 0, login.stderr);
    const refused = await runGatewayCommand(['vulndb', 'import', osv], { cwd, env });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /cannot act through a server \(the saved login/);
    // Imported into the server's own data folder, the server sees it.
    const imported = await runGatewayCommand(['vulndb', 'import', osv, '--json'], {
      cwd,
      env: { ...env, GATEHOUSE_HOME: gw.home },
    });
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal((JSON.parse(imported.stdout) as { inserted: number }).inserted, 1);
    const status = await runGatewayCommand(['vulndb', 'status', '--json'], { cwd, env });
    assert.equal(status.code, 0, status.stderr);
    assert.deepEqual(
      (({ advisories, where }) => ({ advisories, where }))(
        JSON.parse(status.stdout) as { advisories: number; where: string },
      ),
      { advisories: 1, where: gw.url },
    );
    const verify = await runGatewayCommand(['audit', 'verify'], { cwd, env });
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, new RegExp(`ok: \\d+ audit record\\(s\\) verified \\(${gw.url}\\)`));
    assert.deepEqual(readdirSync(cwd).toSorted(), ['gatehouse'], 'only the saved login was written');
  });

  it('refuses a data folder and a server named together rather than guess', async () => {
    const { cwd, env } = emptyPlace('both');
    const run = await runGatewayCommand(['audit', 'verify'], {
      cwd,
      env: { ...env, GATEHOUSE_URL: gw.url, GATEHOUSE_HOME: gw.home },
    });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /GATEHOUSE_URL names a server and GATEHOUSE_HOME a data folder/);
  });
});
