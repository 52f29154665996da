import assert from 'node:assert/strict';
import { validateHeaderValue } from 'node:http';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { attachmentDisposition } from './content-disposition.ts';

describe('attachmentDisposition', () => {
  it('keeps plain names and encodes the exact name', () => {
    assert.equal(
      attachmentDisposition('app-1.0.tar.gz'),
      `attachment; filename="app-1.0.tar.gz"; filename*=UTF-8''app-1.0.tar.gz`,
    );
    assert.equal(
      attachmentDisposition('日本語 "x".bin'),
      `attachment; filename="___ _x_.bin"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E%20%22x%22.bin`,
    );
  });

  it('is a valid header value for any name, and the exact name round-trips (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (name) => {
        const value = attachmentDisposition(name);
        assert.doesNotThrow(() => validateHeaderValue('content-disposition', value));
        const star = /filename\*=UTF-8''(.*)$/.exec(value)?.[1] ?? '';
        if (name.isWellFormed()) assert.equal(decodeURIComponent(star), name);
      }),
    );
  });
});
