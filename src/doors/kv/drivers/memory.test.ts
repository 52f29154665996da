import { createMemoryDriver } from './memory.ts';
import { runDriverContract } from './contract.ts';

let now = 1_700_000_000_000;
runDriverContract('memory', async () => {
  const driver = createMemoryDriver({ clock: { now: () => now } });
  return {
    driver,
    advance: async (ms) => {
      now += ms;
    },
    close: () => driver.close(),
  };
});
