/**
 * `keyglass/leaf`: what a leaf application links, and nothing else. It loads the leaf SDK and the
 * rooms under it (crypto, wire, net, auth, keytree, gossip-edge); no server, CA, metrics library
 * or @peculiar/x509 with its global `Reflect` polyfill (test/package/pack.test.ts checks this).
 */
export * from './leaf-sdk/index.js';
