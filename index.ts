/**
 * The `keyglass` package: its public API. Leaf applications need only `LeafClient`; operators
 * embedding a server use `KeyServer`. Every layer is also reachable as a namespace.
 */
export { LeafClient } from './leaf-sdk/index.js';
export type { LeafClientOptions, LeafConnectOptions, LeafClientEvents } from './leaf-sdk/index.js';
export { ExportUnavailableError, type ExportedSecret } from './leaf-sdk/index.js';
export * as server from './server/index.js';
export * as leafPlane from './leaf-plane/index.js';
export * as leafSdk from './leaf-sdk/index.js';
export * as crypto from './crypto/index.js';
export * as wire from './wire/index.js';
export * as net from './net/index.js';
export * as auth from './auth/index.js';
export * as keytree from './keytree/index.js';
export * as gossipEdge from './gossip-edge/index.js';
export * as coreGroup from './core-group/index.js';
