/** net/ — transports behind one interface: simulated network, TCP+TLS, UDP. */
export * from './transport.js';
export * from './tls.js';
export * from './udp.js';
export * from './sim/index.js';
export * from './tls-thread.js';
