import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { startDoor } from './harness.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('artifact file names', () => {
  it('downloads an artifact whose file name is not ASCII, with an RFC 6266 header', async () => {
    await using h = await startDoor();
    const data = randomBytes(4096);
    const name = encodeURIComponent('報告書 "final".bin');
    const up = await h.call(
      'admin',
      'POST',
      `/api/artifacts?repository=team&name=report&version=1.0.0&fileName=${name}`,
      data,
    );
    assert.equal(up.status, 201, up.body.toString());
    const id = String(up.json()['id']);
    const down = await h.call('admin', 'GET', `/api/artifacts/${id}/download`);
    assert.equal(down.status, 200, down.body.toString());
    assert.equal(sha(down.body), sha(data));
    const disposition = String(down.headers['content-disposition']);
    assert.match(disposition, /^attachment; filename="[\x20-\x7e]+"; filename\*=UTF-8''/);
    assert.equal(decodeURIComponent(disposition.split("UTF-8''")[1] ?? ''), '報告書 "final".bin');
  });

  it('refuses file names with control characters or slashes at upload, or that a client cannot save or shows as another', async () => {
    await using h = await startDoor();
    // "." and ".." name directories; C1 controls (NEL), line separators and bidirectional
    // overrides ("invoice\u202Efdp.exe" shows as "invoiceexe.pdf") are control characters too.
    const unsaveable = ['.', '..', 'a\u0085b', 'a\u2028b', 'invoice\u202Efdp.exe', 'x\u2066y'];
    for (const bad of ['a\u0001b', 'x\ny', '../etc/passwd', 'dir\\file', ...unsaveable]) {
      const up = await h.call(
        'admin',
        'POST',
        `/api/artifacts?repository=team&name=bad&version=1.0.0&fileName=${encodeURIComponent(bad)}`,
        randomBytes(16),
      );
      assert.equal(up.status, 400, JSON.stringify(bad));
      assert.equal(up.json()['code'], 'GW_ERR_ARTIFACTS_UPLOAD_INVALID');
    }
  });

  it('keeps file names that merely start with or hold dots, or are not Latin', async () => {
    await using h = await startDoor();
    for (const [i, good] of ['.config', 'a..b.tar.gz', '...x', 'تقرير.pdf'].entries()) {
      const up = await h.call(
        'admin',
        'POST',
        `/api/artifacts?repository=team&name=ok&version=${i}&fileName=${encodeURIComponent(good)}`,
        randomBytes(16),
      );
      assert.equal(up.status, 201, up.body.toString());
      assert.equal(up.json()['fileName'], good);
    }
  });
  it('keeps file names within the 255 bytes a file system takes, the default one too', async () => {
    await using h = await startDoor();
    const upload = (query: string) =>
      h.call('admin', 'POST', `/api/artifacts?repository=team&${query}`, randomBytes(16));
    // 85 three-byte characters fill 255 bytes; 86 do not fit, though they are 86 characters.
    const fits = await upload(`name=a&version=1&fileName=${encodeURIComponent('報'.repeat(85))}`);
    assert.equal(fits.status, 201, fits.body.toString());
    const over = await upload(`name=a&version=2&fileName=${encodeURIComponent('報'.repeat(86))}`);
    assert.equal(over.status, 400);
    assert.equal(over.json()['field'], 'fileName');
    // Without a file name, "<name>-<version>" of the longest name and version is cut to fit.
    const long = await upload(`name=${'n'.repeat(200)}&version=${'v'.repeat(128)}`);
    assert.equal(long.status, 201, long.body.toString());
    const fileName = String(long.json()['fileName']);
    assert.equal(Buffer.byteLength(fileName), 255);
    assert.ok(fileName.startsWith(`${'n'.repeat(200)}-v`));
  });
});
