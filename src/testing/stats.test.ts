import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { median } from './stats.ts';

void describe('median', () => {
  void it('takes the middle figure, or the mean of the middle two, whatever the order', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([7]), 7);
    assert.ok(Number.isNaN(median([])));
  });
});
