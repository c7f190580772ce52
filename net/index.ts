/** net/ — transports behind one interface: TCP+TLS (also on a worker thread), UDP. The simulator is `net/sim` (its own face: production code never loads it). */
export * from './transport.js';
export * from './tls.js';
export * from './udp.js';
export * from './tls-thread.js';
export type { NodeEnv } from './sim/index.js';
export { Simulator } from './sim/index.js';
