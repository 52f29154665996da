#!/usr/bin/env node
/**
 * Composition root and CLI entry: the only file (with src/cli/) that imports doors.
 * `npm start` runs `gatehouse serve` on the embedded default.
 */
import { processEnvironment } from '#core/config';
import { artifactsCommands } from './cli/artifacts.ts';
import { auditCommands } from './cli/audit.ts';
import { configCommands } from './cli/config.ts';
import { edgePoliciesCommands } from './cli/edge-policies.ts';
import { type CommandSpec, runCli } from './cli/framework.ts';
import { identityCommands } from './cli/identity.ts';
import { kvCommands } from './cli/kv.ts';
import { listenersCommands } from './cli/listeners.ts';
import { policyCommands } from './cli/policy.ts';
import { registryCommands } from './cli/registry.ts';
import { routesCommands } from './cli/routes.ts';
import { serveCommands } from './cli/serve.ts';
import { vulndbCommands } from './cli/vulndb.ts';

const COMMANDS: readonly CommandSpec[] = [
  ...serveCommands,
  ...configCommands,
  ...identityCommands,
  ...auditCommands,
  ...policyCommands,
  ...vulndbCommands,
  ...registryCommands,
  ...artifactsCommands,
  ...kvCommands,
  ...routesCommands,
  ...edgePoliciesCommands,
  ...listenersCommands,
];

const controller = new AbortController();
process.once('SIGINT', () => controller.abort());
const code = await runCli(process.argv.slice(2), COMMANDS, {
  env: processEnvironment(),
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  signal: controller.signal,
});
process.exitCode = code;
