/**
 * The simulation room's public face for cli/ (`keyglass demo --sim`): the system world on the
 * shipped stack, and what a driver reads of it. Simulation subjects themselves run from main.ts.
 */
export {
  buildSystemWorld,
  type SystemObserver,
  type SystemWorld,
  type SystemWorldOptions,
} from './system/world.js';
export type { LeafHandle, LeafState } from './system/leaf-node.js';
export type { ServerHandle } from './system/server-node.js';
export { groupKeyId, SystemLedger, type SystemViolation } from './system/ledger.js';
export { leafName, serverName } from './system/messages.js';
