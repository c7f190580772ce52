/** crypto/ — the one cipher suite everyone uses. */
export * from './suite.js';
