import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '#core/errors';
import { retryOnLockConflict } from './retry.ts';

/** A driver error as pg reports it: the SQLSTATE in `code`. */
function pgError(code: string): Error {
  return Object.assign(new Error(`pg ${code}`), { code });
}

void describe('retryOnLockConflict', () => {
  void it('runs a transaction aborted as a deadlock or serialization failure once more', async () => {
    for (const state of ['40P01', '40001']) {
      let runs = 0;
      const result = await retryOnLockConflict('test', async () => {
        runs += 1;
        if (runs === 1) throw pgError(state);
        return 'done';
      });
      assert.deepEqual({ result, runs }, { result: 'done', runs: 2 });
    }
  });

  void it('answers a second abort with a retriable storage error naming the conflict', async () => {
    let runs = 0;
    await assert.rejects(
      retryOnLockConflict('artifact delete', async () => {
        runs += 1;
        throw pgError('40P01');
      }),
      (error: unknown) =>
        error instanceof GatewayError &&
        error.code === 'GW_ERR_STORAGE_UNAVAILABLE' &&
        error.details['sqlState'] === '40P01' &&
        error.message.includes('artifact delete'),
    );
    assert.equal(runs, 2);
  });

  void it('does not run again on other errors', async () => {
    let runs = 0;
    const other = new GatewayError('GW_ERR_ARTIFACTS_NOT_FOUND', { message: 'No artifact' });
    await assert.rejects(
      retryOnLockConflict('test', async () => {
        runs += 1;
        throw other;
      }),
      (error: unknown) => error === other,
    );
    await assert.rejects(
      retryOnLockConflict('test', async () => {
        runs += 1;
        throw pgError('23505');
      }),
      /pg 23505/,
    );
    assert.equal(runs, 2);
  });
});
