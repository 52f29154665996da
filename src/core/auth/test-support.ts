import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isGatewayError } from '#core/errors';
import type { CreateUserInput } from './users.ts';

/** A clock tests move by hand. */
export interface ManualClock {
  now(): number;
  advance(ms: number): void;
  set(ms: number): void;
}

/** A manual clock starting at `start` epoch milliseconds. */
export function manualClock(start = Date.UTC(2026, 0, 1)): ManualClock {
  let now = start;
  return {
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
    set: (ms) => {
      now = ms;
    },
  };
}

/** A temporary folder removed by `await using`. */
export async function temporaryDir(label: string): Promise<{ path: string } & AsyncDisposable> {
  const path = await mkdtemp(join(tmpdir(), `gatehouse-${label}-`));
  return { path, [Symbol.asyncDispose]: () => rm(path, { recursive: true, force: true }) };
}

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

/** A JWT with an arbitrary header and payload signed by HMAC-SHA256 with `secret` (for forgery tests). */
export function hs256Token(header: object, payload: object, secret: string | Buffer): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** An unsigned JWT (`alg: none`). */
export function unsignedToken(header: object, payload: object): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.`;
}

/** Replaces the payload of a signed JWT, keeping its header and signature. */
export function withPayload(token: string, change: (payload: Record<string, unknown>) => void): string {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const decoded = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
  change(decoded);
  return `${header}.${b64url(JSON.stringify(decoded))}.${signature}`;
}

/** Asserts that `promise` rejects with a GatewayError of `code` (and a matching message). */
export async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isGatewayError(error), String(error));
    assert.equal(error.code, code, error.message);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  });
}

/** Creates `admin` (admin on `*`) and `pub` (publisher on `team-a`) with `password`. */
export async function createAdminAndPublisher(
  users: { create(input: CreateUserInput, actor: string): Promise<unknown> },
  password: string,
): Promise<void> {
  await users.create({ username: 'admin', password, roles: [{ role: 'admin', namespace: '*' }] }, 't');
  await users.create({ username: 'pub', password, roles: [{ role: 'publisher', namespace: 'team-a' }] }, 't');
}
