/**
 * The real mvn resolves a build extension and its dependency tree (a version range, so it reads
 * maven-metadata.xml) through the registry door from a fixture Maven repository; no network
 * beyond loopback.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ageRuleEscapes, type Gateway, startGateway, TestClock, withPolicy } from './harness.ts';
import { writeZip } from './go-fixture.ts';
import { type MavenUpstream, startMavenUpstream } from './maven-fixture.ts';

const run = promisify(execFile);
const DAY = 86_400_000;
const NOW = Date.now();

let work: string;
let up: MavenUpstream;
let gw: Gateway;
let config: Record<string, unknown>;

const BOMB = `<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<metadata><groupId>org.example</groupId><artifactId>bomb</artifactId><versioning><versions><version>&lol2;</version></versions></versioning></metadata>`;

/** A snapshot version's own metadata, as maven-deploy-plugin writes it. */
const snapshotMetadata = (v: string) => `<?xml version="1.0" encoding="UTF-8"?>
<metadata modelVersion="1.1.0">
  <groupId>org.example</groupId>
  <artifactId>snap</artifactId>
  <version>${v}-SNAPSHOT</version>
  <versioning>
    <snapshot><timestamp>20261101.120000</timestamp><buildNumber>3</buildNumber></snapshot>
    <lastUpdated>20261101120000</lastUpdated>
    <snapshotVersions>
      <snapshotVersion><extension>jar</extension><value>${v}-20261101.120000-3</value><updated>20261101120000</updated></snapshotVersion>
      <snapshotVersion><extension>pom</extension><value>${v}-20261101.120000-3</value><updated>20261101120000</updated></snapshotVersion>
    </snapshotVersions>
  </versioning>
</metadata>
`;

/** A group's plugin prefixes, which mvn reads to resolve `mvn <prefix>:<goal>`. */
const PLUGINS = `<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <plugins>
    <plugin><name>Example Maven Plugin</name><prefix>example</prefix><artifactId>example-maven-plugin</artifactId></plugin>
  </plugins>
</metadata>
`;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'registry-maven-'));
  up = await startMavenUpstream({
    'org.example:lib': [
      { version: '1.0', publishedAt: NOW - 30 * DAY },
      { version: '1.1', publishedAt: NOW - 3_600_000 },
      { version: '2.0', publishedAt: NOW - 20 * DAY },
    ],
    'org.example:ext': [
      {
        version: '1.0',
        publishedAt: NOW - 30 * DAY,
        dependencies: [{ groupId: 'org.example', artifactId: 'lib', version: '[1.0,2.0)' }],
      },
    ],
    // Maven 3.8 adds plexus-utils 1.1 to every build extension's class path.
    'org.codehaus.plexus:plexus-utils': [{ version: '1.1', publishedAt: NOW - 900 * DAY }],
    'org.example:corrupt': [{ version: '1.0', publishedAt: NOW - 30 * DAY, corruptJar: true }],
    'org.example:limited': [{ version: '1.0', publishedAt: NOW - 30 * DAY }],
    'org.example:snap': [
      { version: '2.0-SNAPSHOT', publishedAt: NOW - 20 * DAY },
      { version: '3.0-SNAPSHOT', publishedAt: NOW - 3_600_000 },
    ],
  });
  for (const v of ['2.0', '3.0'])
    up.raw.set(`/org/example/snap/${v}-SNAPSHOT/maven-metadata.xml`, snapshotMetadata(v));
  up.raw.set('/org/example/plugins/maven-metadata.xml', PLUGINS);
  up.raw.set('/org/example/bomb/maven-metadata.xml', BOMB);
  config = {
    npm: { enabled: false },
    maven: { uplinks: [{ name: 'central', url: `${up.url}/`, retries: 0 }] },
    policy: { rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } }] },
  };
  gw = await startGateway({ config });
});

after(async () => {
  await gw?.[Symbol.asyncDispose]();
  await up?.[Symbol.asyncDispose]();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/**
 * Runs `mvn validate` in `dir` with every repository mirrored to the door at `url`; with
 * `snapshots`, the build also has a repository that serves snapshots (central does not).
 */
async function mvn(
  dir: string,
  repo: string,
  options: { url?: string; snapshots?: boolean } = {},
): Promise<{ ok: boolean; output: string }> {
  const snapshots =
    options.snapshots === true
      ? '<profiles><profile><id>snapshots</id><repositories><repository><id>snapshots</id><url>http://snapshots.invalid/</url><snapshots><enabled>true</enabled><updatePolicy>always</updatePolicy></snapshots></repository></repositories><pluginRepositories><pluginRepository><id>snapshots</id><url>http://snapshots.invalid/</url><snapshots><enabled>true</enabled><updatePolicy>always</updatePolicy></snapshots></pluginRepository></pluginRepositories></profile></profiles><activeProfiles><activeProfile>snapshots</activeProfile></activeProfiles>'
      : '';
  await writeFile(
    join(dir, 'settings.xml'),
    `<settings><mirrors><mirror><id>gatehouse</id><mirrorOf>*</mirrorOf><url>${options.url ?? gw.url}/maven/</url></mirror></mirrors>${snapshots}</settings>\n`,
  );
  try {
    const { stdout, stderr } = await run(
      'mvn',
      [
        '-B',
        '-e',
        '--strict-checksums',
        '-s',
        join(dir, 'settings.xml'),
        `-Dmaven.repo.local=${repo}`,
        'validate',
      ],
      { cwd: dir, timeout: 180_000, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: work } },
    );
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

async function project(name: string, extension: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'pom.xml'),
    `<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>org.example.test</groupId><artifactId>${name}</artifactId><version>1</version><packaging>pom</packaging>
<build><extensions><extension>${extension}</extension></extensions></build></project>\n`,
  );
  return dir;
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

void describe('mvn through the registry door', () => {
  void it('resolves a dependency tree with a version range to the newest version old enough', async () => {
    const dir = await project(
      'app',
      '<groupId>org.example</groupId><artifactId>ext</artifactId><version>1.0</version>',
    );
    const repo = join(work, 'repo1');
    const r = await mvn(dir, repo);
    assert.ok(r.ok, r.output);
    assert.ok(await exists(join(repo, 'org/example/ext/1.0/ext-1.0.jar')));
    assert.ok(await exists(join(repo, 'org/example/lib/1.0/lib-1.0.jar')), r.output);
    assert.ok(!(await exists(join(repo, 'org/example/lib/1.1'))));
  });

  void it('filters maven-metadata.xml, recomputes latest/release/lastUpdated and regenerates sidecars', async () => {
    const xml = await (await fetch(`${gw.url}/maven/org/example/lib/maven-metadata.xml`)).text();
    assert.match(xml, /<latest>2\.0<\/latest>/);
    assert.match(xml, /<release>2\.0<\/release>/);
    assert.ok(!xml.includes('<version>1.1</version>'));
    assert.ok(!xml.includes('20260101000000'));
    for (const alg of ['md5', 'sha1', 'sha256', 'sha512']) {
      const side = await (await fetch(`${gw.url}/maven/org/example/lib/maven-metadata.xml.${alg}`)).text();
      assert.equal(side, createHash(alg).update(xml).digest('hex'), alg);
    }
    const young = await fetch(`${gw.url}/maven/org/example/lib/1.1/lib-1.1.jar`);
    assert.equal(young.status, 403);
    assert.match(await young.text(), /minimum age is 2d/);
    const latest = await fetch(`${gw.url}/maven/org/example/lib/RELEASE/lib-RELEASE.pom`, {
      redirect: 'manual',
    });
    assert.equal(latest.status, 302);
    assert.match(latest.headers.get('location') ?? '', /\/lib\/2\.0\/lib-2\.0\.pom$/);
  });

  void it('resolves LATEST and RELEASE under the policy in force, not the one of the last metadata read', async () => {
    const where = async (v: string) =>
      (await fetch(`${gw.url}/maven/org/example/lib/${v}/lib-${v}.pom`, { redirect: 'manual' })).headers.get(
        'location',
      ) ?? '';
    assert.match(await where('RELEASE'), /\/lib\/2\.0\/lib-2\.0\.pom$/);
    const deny = {
      id: 'deny',
      type: 'denyList',
      list: { entries: [{ name: 'org.example:lib', versions: '2.0' }] },
    };
    await withPolicy(
      gw,
      config,
      { rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } }, deny] },
      async () => {
        // The redirect named 2.0, resolved under the previous policy, whose POM then answered 403
        // until the package index expired.
        for (const v of ['RELEASE', 'LATEST']) assert.match(await where(v), /\/lib\/1\.0\/lib-1\.0\.pom$/, v);
        const xml = await (await fetch(`${gw.url}/maven/org/example/lib/maven-metadata.xml`)).text();
        assert.match(xml, /<release>1\.0<\/release>/);
      },
    );
    // Back under the first policy, whose metadata is still cached: 2.0 again, not the 1.0 of the
    // index the second policy's build wrote.
    assert.match(await where('LATEST'), /\/lib\/2\.0\/lib-2\.0\.pom$/);
  });

  void it("serves a snapshot version's own metadata when the snapshot passes policy, and a group's plugin prefixes", async () => {
    const snapshot = await fetch(`${gw.url}/maven/org/example/snap/2.0-SNAPSHOT/maven-metadata.xml`);
    assert.equal(snapshot.status, 200);
    const xml = await snapshot.text();
    assert.equal(xml, snapshotMetadata('2.0'));
    for (const alg of ['md5', 'sha1', 'sha256', 'sha512']) {
      const side = await fetch(`${gw.url}/maven/org/example/snap/2.0-SNAPSHOT/maven-metadata.xml.${alg}`);
      assert.equal(await side.text(), createHash(alg).update(xml).digest('hex'), alg);
    }
    const young = await fetch(`${gw.url}/maven/org/example/snap/3.0-SNAPSHOT/maven-metadata.xml`);
    assert.equal(young.status, 403);
    assert.match(await young.text(), /org\.example:snap@3\.0-SNAPSHOT.*minimum age is 2d/);
    const plugins = await fetch(`${gw.url}/maven/org/example/plugins/maven-metadata.xml`);
    assert.equal(plugins.status, 200);
    assert.equal(await plugins.text(), PLUGINS);
  });

  void it('answers 404 for a version or a classifier the uplink does not have, not a refusal', async () => {
    for (const path of ['org/example/lib/9.9/lib-9.9.pom', 'org/example/lib/1.0/lib-1.0-sources.jar']) {
      const r = await fetch(`${gw.url}/maven/${path}`);
      assert.equal(r.status, 404, path);
      assert.match(await r.text(), /was not found on uplink "central".*GW_ERR_REGISTRY_NOT_FOUND/, path);
    }
    const seen = await gw.core.db
      .kysely<{ registry_version_facts: { ecosystem: string; name: string; version: string } }>()
      .selectFrom('registry_version_facts')
      .select('version')
      .where('ecosystem', '=', 'maven')
      .where('version', '=', '9.9')
      .execute();
    assert.deepEqual(seen, [], 'no first-seen time for a version that does not exist');
  });

  void it('refuses an XML bomb, a corrupt jar and malformed paths', async () => {
    const bomb = await fetch(`${gw.url}/maven/org/example/bomb/maven-metadata.xml`);
    assert.equal(bomb.status, 502);
    assert.match(await bomb.text(), /document type declarations are refused/);
    // verify() writes what is queued first, so the query sees every event recorded so far.
    await gw.core.audit.verify();
    const events = await gw.core.audit.query({ action: 'registry.upstream.invalid' });
    assert.ok(events.events.some((e) => e.resource === 'maven:org.example:bomb'));
    // A small jar is checked whole before its first byte goes out: a 502 with the reason, never
    // a complete body (a large one is aborted mid-body: broken-downloads.test.ts).
    for (let i = 0; i < 2; i++) {
      const corrupt = await fetch(`${gw.url}/maven/org/example/corrupt/1.0/corrupt-1.0.jar`);
      assert.equal(corrupt.status, 502);
      assert.match(await corrupt.text(), /GW_ERR_REGISTRY_INTEGRITY_MISMATCH/);
    }
    await gw.core.audit.verify();
    const mismatches = await gw.core.audit.query({ action: 'registry.integrity.mismatch' });
    assert.ok(mismatches.events.some((e) => e.resource === 'maven:org.example:corrupt@1.0'));
    for (const bad of [
      'org/example/../lib/maven-metadata.xml',
      'org/example/lib/1.0/other-1.0.jar',
      'org/ex ample/lib/maven-metadata.xml',
    ]) {
      const r = await fetch(`${gw.url}/maven/${bad.replace('..', '%2e%2e')}`);
      assert.ok(r.status === 400 || r.status === 404, `${bad}: ${r.status}`);
    }
  });

  void it('answers an upstream 429 with 429 and Retry-After, audits it and caches nothing', async () => {
    up.limited.add('/org/example/limited/');
    const paths = ['org/example/limited/maven-metadata.xml', 'org/example/limited/1.0/limited-1.0.jar'];
    for (const path of paths) {
      const r = await fetch(`${gw.url}/maven/${path}`);
      assert.equal(r.status, 429, path);
      assert.equal(r.headers.get('retry-after'), '7');
      assert.match(await r.text(), /rate limited, retry in 7s/);
    }
    await gw.core.audit.verify();
    const events = await gw.core.audit.query({ action: 'registry.upstream.error' });
    for (const path of paths)
      assert.ok(
        events.events.some(
          (e) =>
            e.resource === `path:/maven/${path}` &&
            (e.details as { code?: string }).code === 'GW_ERR_REGISTRY_UPLINK_RATE_LIMITED',
        ),
        path,
      );
    up.limited.clear();
    for (const path of paths) assert.equal((await fetch(`${gw.url}/maven/${path}`)).status, 200, path);
  });

  void it('lets a young version through by exclusion, per-registry rule exclusion and override', async () => {
    const jar = `${gw.url}/maven/org/example/lib/1.1/lib-1.1.jar`;
    const listed = async () =>
      (await (await fetch(`${gw.url}/maven/org/example/lib/maven-metadata.xml`)).text()).includes(
        '<version>1.1</version>',
      );
    await ageRuleEscapes(gw, config, { registry: 'central', pattern: 'org.example:l*' }, async (label) => {
      assert.ok(await listed(), label);
      assert.equal((await fetch(jar)).status, 200, label);
    });
    assert.ok(!(await listed()));
    assert.equal((await fetch(jar)).status, 403);
  });
});

/** `yyyyMMdd.HHmmss` in UTC, as a snapshot build's name carries its time. */
const stamp = (ms: number) => {
  const t = new Date(ms).toISOString().replace(/[-:]/g, '');
  return `${t.slice(0, 8)}.${t.slice(9, 15)}`;
};
const folder = '/org/example/rebuilt/1.0-SNAPSHOT';
/** The snapshot's own metadata naming `build` as its newest. */
const doc = (build: string) => {
  const [, ts, n] = /^1\.0-(\d{8}\.\d{6})-(\d+)$/.exec(build) ?? [];
  return `<?xml version="1.0" encoding="UTF-8"?>
<metadata modelVersion="1.1.0">
  <groupId>org.example</groupId><artifactId>rebuilt</artifactId><version>1.0-SNAPSHOT</version>
  <versioning>
    <snapshot><timestamp>${ts}</timestamp><buildNumber>${n}</buildNumber></snapshot>
    <snapshotVersions>
      <snapshotVersion><extension>jar</extension><value>${build}</value></snapshotVersion>
      <snapshotVersion><extension>pom</extension><value>${build}</value></snapshotVersion>
    </snapshotVersions>
  </versioning>
</metadata>
`;
};

void describe('Maven snapshot builds through the registry door', () => {
  void it('dates each build by its own time, bounded by the door reads, and serves the newest allowed build', async () => {
    const clock = new TestClock(NOW);
    // The version itself (its plain POM) is 40 days old: only its builds' times can hold them back.
    const upstream = await startMavenUpstream({
      'org.example:rebuilt': [{ version: '1.0-SNAPSHOT', publishedAt: NOW - 40 * DAY }],
      // Maven 3.8 adds plexus-utils 1.1 to every build extension's class path.
      'org.codehaus.plexus:plexus-utils': [{ version: '1.1', publishedAt: NOW - 900 * DAY }],
    });
    const b1 = `1.0-${stamp(NOW - 10 * DAY)}-1`;
    const b2 = `1.0-${stamp(NOW - 3_600_000)}-2`;
    // Deployed after b2 by someone who set the clock back: it claims 9 days.
    const b3 = `1.0-${stamp(NOW - 9 * DAY)}-3`;
    // Each build a jar of its own (mvn loads it as a build extension) and a POM, with sidecars.
    const jars = new Map<string, Buffer>();
    const put = (path: string, body: Buffer) => {
      upstream.raw.set(path, body);
      upstream.raw.set(`${path}.sha1`, createHash('sha1').update(body).digest('hex'));
    };
    for (const b of [b1, b2, b3]) {
      const manifest = `Manifest-Version: 1.0\r\nImplementation-Version: ${b}\r\n\r\n`;
      jars.set(b, writeZip([{ name: 'META-INF/MANIFEST.MF', data: Buffer.from(manifest) }]));
      put(`${folder}/rebuilt-${b}.jar`, jars.get(b) as Buffer);
      put(
        `${folder}/rebuilt-${b}.pom`,
        Buffer.from(
          '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion><groupId>org.example</groupId><artifactId>rebuilt</artifactId><version>1.0-SNAPSHOT</version></project>\n',
        ),
      );
    }
    upstream.raw.set(`${folder}/maven-metadata.xml`, doc(b1));
    const gateway = await startGateway({
      clock,
      config: {
        npm: { enabled: false },
        maven: { uplinks: [{ name: 'central', url: `${upstream.url}/`, retries: 0 }] },
        policy: { rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } }] },
      },
    });
    const metadata = async () => {
      const r = await fetch(`${gateway.url}/maven${folder}/maven-metadata.xml`);
      return { status: r.status, body: await r.text() };
    };
    const jar = async (name: string) => {
      const r = await fetch(`${gateway.url}/maven${folder}/${name}`);
      return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
    };
    const served = (b: string) => ({ status: 200, body: jars.get(b) });
    const deploy = async (build: string) => {
      upstream.raw.set(`${folder}/maven-metadata.xml`, doc(build));
      await gateway.door.invalidate('maven', 'org.example:rebuilt');
    };
    try {
      // b1, 10 days old, passes: the metadata as the uplink sent it, and its jar.
      assert.deepEqual(await metadata(), { status: 200, body: doc(b1) });
      assert.deepEqual(await jar(`rebuilt-${b1}.jar`), served(b1));
      // A build no metadata has named, newer than the newest one named, is as new as now.
      const unnamed = await jar(`rebuilt-${b2}.jar`);
      assert.equal(unnamed.status, 403);
      assert.match(unnamed.body.toString(), /org\.example:rebuilt@1\.0-SNAPSHOT.*minimum age is 2d/);

      // b2 is deployed an hour ago: the door keeps serving b1's metadata and files, and refuses
      // b2's, and the plain-named jar (it stands for the newest build).
      await deploy(b2);
      assert.deepEqual(await metadata(), { status: 200, body: doc(b1) });
      assert.equal((await jar(`rebuilt-${b2}.jar`)).status, 403);
      assert.equal((await jar(`rebuilt-${b2}.jar.sha1`)).status, 403);
      assert.equal((await jar('rebuilt-1.0-SNAPSHOT.jar')).status, 403);
      assert.deepEqual(await jar(`rebuilt-${b1}.jar`), served(b1));
      // mvn resolves the snapshot to b1 through the door, checksums and all.
      const dir = await project(
        'snapshot-user',
        '<groupId>org.example</groupId><artifactId>rebuilt</artifactId><version>1.0-SNAPSHOT</version>',
      );
      const repo = join(work, 'repo-snapshots');
      const built = await mvn(dir, repo, { url: gateway.url, snapshots: true });
      assert.ok(built.ok, built.output);
      const local = join(repo, 'org/example/rebuilt/1.0-SNAPSHOT');
      assert.ok(await exists(join(local, `rebuilt-${b1}.jar`)), built.output);
      assert.ok(!(await exists(join(local, `rebuilt-${b2}.jar`))), built.output);

      // b3 claims 9 days, but the door's previous read (b2's) did not have it: it is no older
      // than that read, so it is refused too, and b1 is still what the door serves.
      await deploy(b3);
      assert.deepEqual(await metadata(), { status: 200, body: doc(b1) });
      const backdated = await jar(`rebuilt-${b3}.jar`);
      assert.equal(backdated.status, 403);
      assert.match(backdated.body.toString(), /minimum age is 2d/);
      // The bound is durable: with every cached document gone, b3 is still refused.
      await gateway.door.invalidate('maven', 'org.example:rebuilt');
      assert.equal((await jar(`rebuilt-${b3}.jar`)).status, 403);

      // Three days later both rebuilds are old enough: the newest, b3, is served.
      clock.time = NOW + 3 * DAY;
      await gateway.door.invalidate('maven', 'org.example:rebuilt');
      assert.deepEqual(await metadata(), { status: 200, body: doc(b3) });
      for (const b of [b3, b2]) assert.deepEqual(await jar(`rebuilt-${b}.jar`), served(b));
    } finally {
      await gateway[Symbol.asyncDispose]();
      await upstream[Symbol.asyncDispose]();
    }
  });
});

void describe('Maven snapshots without unique versions through the registry door', () => {
  void it('dates a redeployed plain-named snapshot file by its upload, not by the first time the version was seen', async () => {
    // Maven 2 `uniqueVersion=false` (and repositories that still hold such snapshots): every
    // deploy overwrites `x-1.0-SNAPSHOT.jar` and the metadata names no build.
    const upstream = await startMavenUpstream({
      'org.example:plain': [{ version: '1.0-SNAPSHOT', publishedAt: NOW - 40 * DAY }],
    });
    const dir = '/org/example/plain/1.0-SNAPSHOT';
    upstream.raw.set(
      `${dir}/maven-metadata.xml`,
      '<?xml version="1.0" encoding="UTF-8"?>\n<metadata><groupId>org.example</groupId><artifactId>plain</artifactId><version>1.0-SNAPSHOT</version><versioning><snapshot><localCopy>true</localCopy></snapshot><lastUpdated>20261001000000</lastUpdated></versioning></metadata>\n',
    );
    const gateway = await startGateway({
      config: {
        npm: { enabled: false },
        maven: { uplinks: [{ name: 'central', url: `${upstream.url}/`, retries: 0 }] },
        policy: { rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } }] },
      },
    });
    const jar = `${gateway.url}/maven${dir}/plain-1.0-SNAPSHOT.jar`;
    try {
      assert.equal((await fetch(jar)).status, 200);
      // Redeployed an hour ago: new bytes at the same path.
      const rebuilt = writeZip([
        { name: 'META-INF/MANIFEST.MF', data: Buffer.from('Manifest-Version: 1.0\r\n\r\n') },
      ]);
      upstream.raw.set(`${dir}/plain-1.0-SNAPSHOT.jar`, rebuilt);
      upstream.raw.set(
        `${dir}/plain-1.0-SNAPSHOT.jar.sha1`,
        createHash('sha1').update(rebuilt).digest('hex'),
      );
      upstream.modified.set(`${dir}/plain-1.0-SNAPSHOT.jar`, NOW - 3_600_000);
      await gateway.door.invalidate('maven', 'org.example:plain');
      const young = await fetch(jar);
      assert.equal(young.status, 403, 'the rebuild waits out the minimum age');
      assert.match(await young.text(), /minimum age is 2d/);
      // Nor when the snapshot has no metadata of its own.
      upstream.raw.delete(`${dir}/maven-metadata.xml`);
      await gateway.door.invalidate('maven', 'org.example:plain');
      assert.equal((await fetch(jar)).status, 403);
    } finally {
      await gateway[Symbol.asyncDispose]();
      await upstream[Symbol.asyncDispose]();
    }
  });
});
