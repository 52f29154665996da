import { type App, type CoreServices, selectSection } from '#core/app';
import type { ConfigStore } from '#core/config';
import type { GatehouseConfig } from './config-schema.ts';

/**
 * Creates every enabled door, in start order. Each door sees only its own section, as a
 * reloadable view of the store. A door's code (and the libraries only it uses) is loaded
 * only when the door is enabled, so a gateway that runs one door carries one door in memory.
 */
export async function createEnabledDoors(
  core: CoreServices,
  store: ConfigStore<GatehouseConfig>,
): Promise<App[]> {
  const config = store.current;
  const section = <K extends keyof GatehouseConfig>(key: K) => selectSection(store, (c) => c[key]);
  const doors: App[] = [];
  if (config.registry.enabled) {
    const { createRegistryDoor } = await import('../doors/registry/index.ts');
    doors.push(createRegistryDoor(core, section('registry')));
  }
  if (config.artifacts.enabled) {
    const { createArtifactsDoor } = await import('../doors/artifacts/index.ts');
    doors.push(createArtifactsDoor(core, section('artifacts')));
  }
  if (config.kv.enabled) {
    const { createKvDoor } = await import('../doors/kv/index.ts');
    doors.push(createKvDoor(core, section('kv')));
  }
  if (config.edge.enabled) {
    const { createEdgeDoor } = await import('../doors/edge/index.ts');
    doors.push(createEdgeDoor(core, section('edge')));
  }
  return doors;
}
