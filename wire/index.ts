/** wire/ — canonical bounded binary codec, frame header, stream framing. */
export * from './codec.js';
export * from './codecs.js';
export * from './frame.js';
export * from './stream.js';
