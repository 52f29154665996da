import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { buildBundle, parseBundle } from './bundle.ts';

const digest = createHash('sha256').update('x').digest('hex');

void describe('parseBundle', () => {
  void it('keeps only the fields of a bundle, so what a client adds is neither stored nor shown', () => {
    const sent = {
      ...buildBundle(digest, Buffer.from('sig'), { hint: 'abc' }),
      note: 'x'.repeat(100_000),
    } as Record<string, unknown>;
    (sent['verificationMaterial'] as Record<string, unknown>)['extra'] = { big: 'y'.repeat(1000) };
    const parsed = parseBundle(JSON.parse(JSON.stringify(sent)));
    assert.deepEqual(
      JSON.parse(JSON.stringify(parsed)),
      buildBundle(digest, Buffer.from('sig'), { hint: 'abc' }),
    );
  });

  void it('refuses a key hint that is no short printable text', () => {
    for (const hint of ['', 'h'.repeat(257), 'a\nb', 'a\u202eb']) {
      assert.throws(
        () => parseBundle(buildBundle(digest, Buffer.from('sig'), { hint })),
        (error: { code?: string }) => error.code === 'GW_ERR_ARTIFACTS_SIGNATURE_INVALID',
        JSON.stringify(hint),
      );
    }
  });
});
