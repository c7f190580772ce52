/** A failure of a CA operation that the operator can fix; its message is one line. */
export class CaError extends Error {
  override readonly name = 'CaError';
}
