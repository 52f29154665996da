import { type App, type CoreServices, selectSection } from '#core/app';
import type { ConfigStore } from '#core/config';
import { createArtifactsDoor } from '../doors/artifacts/index.ts';
import { createEdgeDoor } from '../doors/edge/index.ts';
import { createKvDoor } from '../doors/kv/index.ts';
import { createRegistryDoor } from '../doors/registry/index.ts';
import type { GatehouseConfig } from './config-schema.ts';

/**
 * Creates every enabled door, in start order. Each door sees only its own section, as a
 * reloadable view of the store.
 */
export function createEnabledDoors(core: CoreServices, store: ConfigStore<GatehouseConfig>): App[] {
  const config = store.current;
  const section = <K extends keyof GatehouseConfig>(key: K) => selectSection(store, (c) => c[key]);
  const doors: App[] = [];
  if (config.registry.enabled) doors.push(createRegistryDoor(core, section('registry')));
  if (config.artifacts.enabled) doors.push(createArtifactsDoor(core, section('artifacts')));
  if (config.kv.enabled) doors.push(createKvDoor(core, section('kv')));
  if (config.edge.enabled) doors.push(createEdgeDoor(core, section('edge')));
  return doors;
}
