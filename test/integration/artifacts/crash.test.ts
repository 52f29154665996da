import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import { request } from 'undici';
import { spawnDoor } from './child.ts';

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
  );
}

void it('kill -9 during an upload leaves nothing visible and no orphan after restart', {
  timeout: 120_000,
}, async () => {
  const home = mkdtempSync(join(tmpdir(), 'gh-crash-'));
  try {
    const first = await spawnDoor(home);
    let sent = 0;
    let killed = false;
    const total = 64 * 1024 * 1024;
    // The body keeps coming; after 8 MiB the server process is killed without warning.
    const body = (async function* () {
      while (sent < total) {
        const chunk = randomBytes(256 * 1024);
        sent += chunk.length;
        if (sent >= 8 * 1024 * 1024 && !killed) {
          killed = true;
          await first.kill('SIGKILL');
        }
        yield chunk;
      }
    })();
    await assert.rejects(
      request(`${first.url}/api/artifacts?repository=team&name=crash&version=1`, {
        method: 'POST',
        headers: { authorization: 'Bearer token-admin', 'content-length': String(total) },
        body: Readable.from(body),
      }).then((r) => r.body.text()),
    );
    assert.ok(killed);
    const staged = files(join(home, 'artifacts', 'staging'));
    assert.ok(staged.length > 0, 'the killed upload left a staging file behind');

    const second = await spawnDoor(home);
    try {
      const list = await request(`${second.url}/api/artifacts`, {
        headers: { authorization: 'Bearer token-admin' },
      });
      assert.equal(((await list.body.json()) as { total: number }).total, 0);
      assert.deepEqual(
        files(join(home, 'artifacts', 'staging')),
        [],
        'startup sweep removed staging leftovers',
      );
      assert.deepEqual(files(join(home, 'artifacts', 'blobs')), [], 'no orphaned blob');
      // The restarted gateway works.
      const ok = await request(`${second.url}/api/artifacts?repository=team&name=crash&version=1`, {
        method: 'POST',
        headers: { authorization: 'Bearer token-admin' },
        body: randomBytes(1000),
      });
      assert.equal(ok.statusCode, 201);
      await ok.body.text();
    } finally {
      await second.kill('SIGTERM');
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
