/**
 * PEM plumbing: split a file into typed blocks, bounded in size and count, and decode
 * base64 strictly (a truncated or corrupted block is an error, never a shorter DER).
 */
export const MAX_PEM_FILE_BYTES = 1 << 20; // 1 MiB: far beyond any bundle or CRL we write
const MAX_BLOCKS = 64;

export class PemError extends Error {
  override readonly name = 'PemError';
}

export interface PemBlock {
  readonly label: string; // e.g. 'CERTIFICATE', 'ENCRYPTED PRIVATE KEY', 'X509 CRL'
  readonly der: Uint8Array;
}

const BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;

export function parsePem(text: string): PemBlock[] {
  if (text.length > MAX_PEM_FILE_BYTES)
    throw new PemError(`PEM input larger than ${MAX_PEM_FILE_BYTES} bytes`);
  const blocks: PemBlock[] = [];
  const begins = text.match(/-----BEGIN /g)?.length ?? 0;
  for (const m of text.matchAll(BLOCK_RE)) {
    const [, label, body, endLabel] = m as unknown as [string, string, string, string];
    if (label !== endLabel) throw new PemError(`PEM block BEGIN ${label} ends with END ${endLabel}`);
    if (blocks.length >= MAX_BLOCKS) throw new PemError(`more than ${MAX_BLOCKS} PEM blocks`);
    const b64 = body.replace(/\s+/g, '');
    if (b64.length === 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
      throw new PemError(`PEM block '${label}' has invalid base64 (truncated?)`);
    }
    blocks.push({ label, der: new Uint8Array(Buffer.from(b64, 'base64')) });
  }
  if (blocks.length !== begins) throw new PemError('PEM input has an unterminated block (truncated?)');
  if (blocks.length === 0) throw new PemError('no PEM block found');
  return blocks;
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** The blocks of one label; throws if any other label is present or none is. */
export function pemBlocksOf(text: string, label: string): Uint8Array[] {
  const blocks = parsePem(text);
  const other = blocks.find((b) => b.label !== label);
  if (other) throw new PemError(`expected ${label} PEM, found ${other.label}`);
  return blocks.map((b) => b.der);
}
