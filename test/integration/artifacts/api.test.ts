import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { parseExposition, sampleValue } from '#core/metrics';
import { request } from 'undici';
import { buildBundle, keyHint, signStream } from '../../../src/doors/artifacts/index.ts';
import { MAX_MULTIPART_FIELDS } from '../../../src/doors/artifacts/routes.ts';
import { makeTgz } from '../../../src/doors/artifacts/scan/fixtures.ts';
import type { ArtifactTables } from '../../../src/doors/artifacts/store/schema.ts';
import { startDoor } from './harness.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const lock = (deps: Record<string, string>) =>
  JSON.stringify({
    lockfileVersion: 3,
    packages: Object.fromEntries(Object.entries(deps).map(([n, v]) => [`node_modules/${n}`, { version: v }])),
  });

void describe('artifacts REST API', () => {
  void it('uploads raw and multipart, quarantines, scans, approves and serves whole and ranged downloads', async () => {
    await using h = await startDoor();
    const data = makeTgz([
      { name: 'package-lock.json', data: lock({ 'left-pad': '1.3.0' }) },
      { name: 'blob.bin', data: randomBytes(300_000) },
    ]);
    const up = await h.call(
      'publisher',
      'POST',
      `/api/artifacts?repository=team&name=tool&version=1.0.0&sha256=${sha(data)}&fileName=tool.tgz`,
      data,
      { 'content-type': 'application/gzip' },
    );
    assert.equal(up.status, 201, up.body.toString());
    const item = up.json();
    assert.equal(item['sha256'], sha(data));
    assert.equal(item['status'], 'quarantined');
    const id = String(item['id']);
    // Consumers only download approved artifacts; an admin may fetch a quarantined one.
    const early = await h.call('consumer', 'GET', `/api/artifacts/${id}/download`);
    assert.equal(early.status, 403);
    assert.equal(early.json()['code'], 'GW_ERR_ARTIFACTS_NOT_APPROVED');
    assert.equal((await h.call('admin', 'GET', `/api/artifacts/${id}/download`)).status, 200);
    await h.door.scanQueue().drain();
    assert.equal((await h.call('consumer', 'GET', `/api/artifacts/${id}`)).json()['status'], 'approved');
    const full = await h.call('consumer', 'GET', `/api/artifacts/${id}/download`);
    assert.equal(full.status, 200);
    assert.equal(sha(full.body), sha(data));
    assert.equal(
      full.headers['repr-digest'],
      `sha-256=:${Buffer.from(sha(data), 'hex').toString('base64')}:`,
    );
    const part = await h.call('consumer', 'GET', `/api/artifacts/${id}/download`, undefined, {
      range: 'bytes=1000-1999',
    });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 1000-1999/${data.length}`);
    assert.deepEqual(part.body, data.subarray(1000, 2000));
    assert.equal(
      (
        await h.call('consumer', 'GET', `/api/artifacts/${id}/download`, undefined, {
          range: `bytes=${data.length}-`,
        })
      ).status,
      416,
    );
    const report = (await h.call('auditor', 'GET', `/api/artifacts/${id}/scan-results`)).json();
    assert.equal(report['SchemaVersion'], 2);
    const sbom = (
      await h.call('auditor', 'GET', `/api/artifacts/${id}/scan-results?format=cyclonedx`)
    ).json();
    assert.equal(sbom['bomFormat'], 'CycloneDX');

    const boundary = 'gh-boundary-42';
    const form = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="repository"\r\n\r\nteam\r\n--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nlib\r\n`,
      ),
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="version"\r\n\r\n2.0\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="lib.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
      data,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const multi = await h.call('publisher', 'POST', '/api/artifacts?repository=team', form, {
      'content-type': `multipart/form-data; boundary=${boundary}`,
    });
    assert.equal(multi.status, 201, multi.body.toString());
    assert.equal(multi.json()['sha256'], sha(data));
    assert.equal(multi.json()['deduplicated'], true);
    assert.equal(multi.json()['fileName'], 'lib.bin');

    const list = (await h.call('consumer', 'GET', '/api/artifacts?sort=name&order=asc')).json();
    assert.deepEqual(
      (list['items'] as { name: string }[]).map((i) => i.name),
      ['lib', 'tool'],
    );
    assert.equal((await h.call('outsider', 'GET', '/api/artifacts')).json()['total'], 0);
    assert.equal((await h.call('admin', 'GET', '/api/artifacts?status=approved')).json()['total'], 1);
  });

  void it('rejects bad uploads with clear errors and audits them', async () => {
    await using h = await startDoor({ quotas: { team: 100_000 } });
    const data = randomBytes(50_000);
    const mismatch = await h.call(
      'publisher',
      'POST',
      `/api/artifacts?repository=team&name=a&version=1&sha256=${'0'.repeat(64)}`,
      data,
    );
    assert.equal(mismatch.status, 400);
    assert.equal(mismatch.json()['code'], 'GW_ERR_ARTIFACTS_DIGEST_MISMATCH');
    const traversal = await h.call(
      'publisher',
      'POST',
      '/api/artifacts?repository=team&name=..%2F..%2Fetc&version=1',
      data,
    );
    assert.equal(traversal.json()['code'], 'GW_ERR_ARTIFACTS_UPLOAD_INVALID');
    assert.equal(
      (await h.call('publisher', 'POST', '/api/artifacts?repository=team&name=a&version=1', data)).status,
      201,
    );
    assert.equal(
      (await h.call('publisher', 'POST', '/api/artifacts?repository=team&name=a&version=1', data)).json()[
        'code'
      ],
      'GW_ERR_ARTIFACTS_ALREADY_EXISTS',
    );
    const quota = await h.call(
      'publisher',
      'POST',
      '/api/artifacts?repository=team&name=b&version=1',
      randomBytes(60_000),
    );
    assert.equal(quota.status, 507);
    assert.equal(quota.json()['code'], 'GW_ERR_ARTIFACTS_QUOTA_EXCEEDED');
    // Endless small fields before the file part: refused at the bound, not read on and on.
    const boundary = 'gh-many-fields';
    const field = (i: number) => `--${boundary}\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nx\r\n`;
    const many = await h.call(
      'publisher',
      'POST',
      '/api/artifacts?repository=team&name=c&version=1',
      `${Array.from({ length: MAX_MULTIPART_FIELDS + 1 }, (_, i) => field(i)).join('')}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="c"\r\n\r\ndata\r\n--${boundary}--\r\n`,
      { 'content-type': `multipart/form-data; boundary=${boundary}` },
    );
    assert.equal(many.status, 400);
    assert.equal(many.json()['code'], 'GW_ERR_ARTIFACTS_UPLOAD_INVALID');
    assert.match(String(many.json()['detail']), /more than 16 fields/);
    const enough = await h.call(
      'publisher',
      'POST',
      '/api/artifacts?repository=team&name=c&version=1',
      `${Array.from({ length: MAX_MULTIPART_FIELDS }, (_, i) => field(i)).join('')}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="c"\r\n\r\ndata\r\n--${boundary}--\r\n`,
      { 'content-type': `multipart/form-data; boundary=${boundary}` },
    );
    assert.equal(enough.status, 201, enough.body.toString());
    const events = await h.core.audit.query({ action: 'artifacts.upload' });
    assert.deepEqual(events.events.map((e) => e.decision).sort(), [
      'allow',
      'allow',
      'deny',
      'deny',
      'deny',
      'deny',
      'deny',
    ]);
  });

  void it('lists repositories with counts, sizes and quotas, limited to what the caller may list', async () => {
    await using h = await startDoor({ quotas: { team: 1_000_000, archive: 5_000 } });
    for (const [version, size] of [
      ['1', 1000],
      ['2', 3000],
    ] as const) {
      const up = await h.call(
        'admin',
        'POST',
        `/api/artifacts?repository=team&name=r&version=${version}`,
        randomBytes(size),
      );
      assert.equal(up.status, 201);
    }
    await h.door.scanQueue().drain();
    assert.equal(
      (await h.call('admin', 'POST', '/api/artifacts?repository=default&name=q&version=1', randomBytes(10)))
        .status,
      201,
    );
    const names = async (user: string) =>
      (
        (await h.call(user, 'GET', '/api/artifacts/-/repositories')).json()['repositories'] as {
          name: string;
        }[]
      ).map((r) => r.name);
    const all = (await h.call('admin', 'GET', '/api/artifacts/-/repositories')).json();
    assert.equal(all['total'], 3);
    const [archive, fallback, team] = all['repositories'] as Record<string, unknown>[];
    assert.deepEqual(archive, {
      name: 'archive',
      artifacts: 0,
      size: 0,
      quota: 5_000,
      approved: 0,
      quarantined: 0,
      blocked: 0,
      lastUploadAt: null,
    });
    assert.equal(fallback?.['name'], 'default');
    assert.equal(fallback?.['quarantined'], 1);
    assert.equal(team?.['artifacts'], 2);
    assert.equal(team?.['size'], 4000);
    assert.equal(team?.['approved'], 2);
    assert.equal(team?.['quota'], 1_000_000);
    assert.match(String(team?.['lastUploadAt']), /^\d{4}-\d\d-\d\dT/);
    // Repository-bound roles see their own repositories only, including an empty one.
    assert.deepEqual(await names('consumer'), ['team']);
    assert.deepEqual(await names('outsider'), ['other']);
    assert.deepEqual(await names('auditor'), ['archive', 'default', 'team']);
    assert.equal((await h.call('anonymous', 'GET', '/api/artifacts/-/repositories')).status, 401);
  });

  void it('closes the stored file when a client leaves mid-download, and serves an empty artifact', async () => {
    await using h = await startDoor();
    const blobFds = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith(join(h.home, 'artifacts', 'blobs'));
        } catch {
          return false;
        }
      }).length;
    const big = await h.call(
      'admin',
      'POST',
      '/api/artifacts?repository=team&name=big&version=1',
      randomBytes(8 << 20),
    );
    const empty = await h.call(
      'admin',
      'POST',
      '/api/artifacts?repository=team&name=empty&version=1',
      Buffer.alloc(0),
    );
    assert.equal(empty.status, 201, empty.body.toString());
    await h.door.scanQueue().drain();
    // A scan's read stream closes its file a moment after the scan ends (seen on a loaded run).
    for (let i = 0; i < 100 && blobFds() > 0; i += 1) await new Promise((r) => setTimeout(r, 20));
    assert.equal(blobFds(), 0, 'no stored file left open by uploads and scans');

    const gone = await request(`${h.url}/api/artifacts/${String(big.json()['id'])}/download`, {
      headers: { authorization: 'Bearer token-consumer' },
    });
    assert.equal(gone.statusCode, 200);
    for await (const _ of gone.body) break;
    const got = await h.call('consumer', 'GET', `/api/artifacts/${String(empty.json()['id'])}/download`);
    assert.equal(got.status, 200);
    assert.equal(got.body.length, 0);
    assert.equal(got.headers['content-length'], '0');
    // The server learns of the disconnect asynchronously; no garbage collection is needed after it.
    for (let i = 0; i < 100 && blobFds() > 0; i += 1) await new Promise((r) => setTimeout(r, 20));
    assert.equal(blobFds(), 0, 'no stored file left open');
  });

  void it('detects a tampered stored blob at download', async () => {
    await using h = await startDoor();
    const data = randomBytes(700_000);
    const id = String(
      (await h.call('admin', 'POST', '/api/artifacts?repository=team&name=t&version=1', data)).json()['id'],
    );
    const dir = join(h.home, 'artifacts', 'blobs', 'b');
    const sub = readdirSync(dir)[0] ?? '';
    const file = join(dir, sub, readdirSync(join(dir, sub))[0] ?? '');
    const bytes = readFileSync(file);
    bytes[20] = (bytes[20] ?? 0) ^ 0xff;
    writeFileSync(file, bytes);
    const res = await h.call('admin', 'GET', `/api/artifacts/${id}/download`);
    assert.equal(res.status, 500);
    assert.equal(res.json()['code'], 'GW_ERR_ARTIFACTS_INTEGRITY');
    // Tampering in a later segment: the response starts, then is cut short before the bad segment.
    const later = readFileSync(file);
    later[20] = (later[20] ?? 0) ^ 0xff;
    later[600_000] = (later[600_000] ?? 0) ^ 0xff;
    writeFileSync(file, later);
    await assert.rejects(async () => {
      const r = await h.call('admin', 'GET', `/api/artifacts/${id}/download`);
      if (r.body.length === data.length) throw new Error('no error');
      throw new Error('short body');
    });
    // Both are tampering found: audited as errors of the download (the first, caught before the
    // headers went out, was not audited or counted at all), with the address that asked.
    const failed = (await h.core.audit.query({ action: 'artifacts.download' })).events.filter(
      (e) => e.decision === 'error',
    );
    assert.equal(failed.length, 2);
    assert.ok(
      failed.every((e) => e.clientIp === '127.0.0.1' && /sha256|tag|authentic/i.test(e.reason ?? '')),
    );
    assert.equal(
      sampleValue(
        parseExposition((await h.core.metrics.render()).body),
        'gatehouse_artifacts_downloads_total',
        {
          result: 'integrity',
        },
      ),
      2,
    );
  });
  void it('stores a signature bundle as a bundle: what a client adds is dropped, and an old row that no longer parses only fails to vouch', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicKey = key.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    await using h = await startDoor({ trust: { mode: 'require', keys: [{ id: 'release', publicKey }] } });
    const data = randomBytes(1000);
    const up = await h.call('publisher', 'POST', '/api/artifacts?repository=team&name=s&version=1', data);
    const id = String(up.json()['id']);
    await h.door.scanQueue().drain();
    // A row from before the hint was checked (a line break in it): ignored, not an error.
    const bad = buildBundle(sha(data), Buffer.from('x'), { hint: 'old\nkey' });
    await h.core.db
      .kysely<ArtifactTables>()
      .insertInto('artifacts_signatures')
      .values({
        id: 'legacy',
        digest: sha(data),
        repository: 'team',
        kind: 'key',
        bundle: JSON.stringify(bad),
        identity: 'old',
        created_by: 'user:pub',
        created_at: 1,
      })
      .execute();
    assert.equal((await h.call('consumer', 'GET', `/api/artifacts/${id}/download`)).status, 403);
    const signed = await signStream(Readable.from([data]), key.privateKey, { hint: keyHint(key.publicKey) });
    const sent = JSON.stringify({ bundle: { ...signed, note: 'x'.repeat(10_000) } });
    const added = await h.call('publisher', 'POST', `/api/artifacts/${id}/signatures`, sent, {
      'content-type': 'application/json',
    });
    assert.equal(added.status, 201, added.body.toString());
    assert.deepEqual(added.json()['bundle'], signed);
    const listed = (await h.call('consumer', 'GET', `/api/artifacts/${id}/signatures`)).json();
    assert.deepEqual((listed['signatures'] as { bundle: unknown }[]).at(-1)?.bundle, signed);
    const down = await h.call('consumer', 'GET', `/api/artifacts/${id}/download`);
    assert.equal(down.status, 200, down.body.toString());
    // Its audit record says from where, as every other write of the door's does.
    const other = JSON.stringify(buildBundle('0'.repeat(64), Buffer.from('x'), { hint: 'k' }));
    const refused = await h.call('publisher', 'POST', `/api/artifacts/${id}/signatures`, other, {
      'content-type': 'application/json',
    });
    assert.equal(refused.status, 400);
    const audited = (await h.core.audit.query({ action: 'artifacts.signature.add' })).events;
    assert.deepEqual(
      audited
        .map((e) => [e.decision, e.clientIp])
        .toSorted((a, b) => String(a[0]).localeCompare(String(b[0]))),
      [
        ['allow', '127.0.0.1'],
        ['deny', '127.0.0.1'],
      ],
    );
  });
  void it('keeps at most 64 signatures of an artifact, so a publisher cannot make every trust check and refusal grow without bound', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicKey = key.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    await using h = await startDoor({ trust: { mode: 'require', keys: [{ id: 'release', publicKey }] } });
    const data = randomBytes(100);
    const id = String(
      (await h.call('publisher', 'POST', '/api/artifacts?repository=team&name=m&version=1', data)).json()[
        'id'
      ],
    );
    const json = { 'content-type': 'application/json' };
    // Signatures that never verify, each one more reason in every refusal and its audit record.
    const junk = JSON.stringify(
      buildBundle(sha(data), Buffer.from('not a signature'), { hint: keyHint(key.publicKey) }),
    );
    for (let i = 0; i < 64; i += 1) {
      const added = await h.call('publisher', 'POST', `/api/artifacts/${id}/signatures`, junk, json);
      assert.equal(added.status, 201, `signature ${i}: ${added.body.toString()}`);
    }
    const over = await h.call('publisher', 'POST', `/api/artifacts/${id}/signatures`, junk, json);
    assert.equal(over.status, 507, over.body.toString());
    assert.equal(over.json()['code'], 'GW_ERR_ARTIFACTS_QUOTA_EXCEEDED');
    assert.equal(
      ((await h.call('consumer', 'GET', `/api/artifacts/${id}/signatures`)).json()['signatures'] as unknown[])
        .length,
      64,
    );
  });
});
