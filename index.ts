/** The `keyglass` package: its public API. */
export * as crypto from './crypto/index.js';
export * as wire from './wire/index.js';
export * as net from './net/index.js';
