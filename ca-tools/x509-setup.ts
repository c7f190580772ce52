/**
 * The one place that loads @peculiar/x509: it needs reflect-metadata (a global `Reflect`
 * polyfill) before it is imported, and a WebCrypto provider. Only the CA (issuing certificates
 * and CRLs, reading CSRs) uses it; auth/ reads certificates and CRLs with its own DER reader, so
 * servers and leaf applications never load it.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
