import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import { withTempDir } from '#testing/temp-dir';
import { type ConfigSection, ConfigStore, ConfigValidationError, object } from '#core/config';
import { type PolicyConfig, policyConfigSchema } from './config.ts';
import { createPolicyService } from './service.ts';

const schema = object({ policy: policyConfigSchema }, 'Root');
const rule = (id: string, age: string) =>
  `    - { id: ${id}, type: minimumAge, minimumAge: { age: ${age} } }\n`;

void it('refuses a reload whose policy does not compile, so the engine and the document in force agree', async () => {
  await withTempDir('gatehouse-policy-', async (dir) => {
    const file = join(dir, 'gatehouse.yaml');
    await writeFile(file, `policy:\n  rules:\n${rule('age', '7d')}`);
    const store = await ConfigStore.open(schema, { file });
    const section: ConfigSection<PolicyConfig> = {
      current: () => store.current.policy,
      subscribe: (listener) => store.subscribe((next, previous) => listener(next.policy, previous.policy)),
      vet: (check, path) => store.vet((next) => check(next.policy), path),
    };
    const errors: Error[] = [];
    using service = createPolicyService(section, {
      clock: { now: () => Date.now() },
      configPath: 'registry.policy',
      onError: (error) => errors.push(error),
    });
    const first = service.current().version;
    // Valid for the schema, not for the engine: the same rule id twice.
    await writeFile(file, `policy:\n  rules:\n${rule('age', '7d')}${rule('age', '1d')}`);
    const outcome = await store.reload();
    assert.ok(!outcome.ok && outcome.error instanceof ConfigValidationError, JSON.stringify(outcome));
    assert.deepEqual(
      outcome.error.issues.map((i) => [i.path, i.expected]),
      [['registry.policy', 'Duplicate rule id "age" in policy.rules']],
    );
    assert.equal(store.current.policy.rules.length, 1, 'the document in force is the last good one');
    assert.equal(service.current().version, first);
    assert.deepEqual(errors, [], 'refused before any swap');
    await writeFile(file, `policy:\n  rules:\n${rule('age', '1d')}`);
    assert.equal((await store.reload()).ok, true);
    assert.notEqual(service.current().version, first, 'a good policy still swaps');
  });
});
