/** wire/ — canonical bounded binary codec, frame header, stream framing. */
export * from './codec.js';
