/**
 * The Keyglass certificate authority behind `keyglass ca`: a directory holding
 *
 *   ca.pem          the self-signed root certificate (0644)
 *   ca.key          its private key, PKCS#8, AES-256-CBC under a passphrase unless the operator opted out (0600)
 *   store.json      the record of issued certificates and the last CRL number
 *   certs/<serial>.pem  a copy of every issued certificate
 *   crl.pem         the latest CRL (default output of `ca crl`)
 *
 * Every mutation runs under the directory lock, re-reads the store inside it, stages all
 * files before touching any, and commits store.json as its commit point: a crash or an
 * error at any step leaves the store as it was.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  CredentialError,
  decodePrivateKey,
  encodePrivateKey,
  newPassphraseProblem,
  ensureDir,
  identityUri,
  isValidName,
  normalizeSerial,
  parseCertificate,
  parseCertificatesPem,
  readTextFile,
  stageFile,
  toPem,
  withDirLock,
  DirLockedError,
  writeFileDurable,
  writeFilesDurable,
  SECRET_FILE_MODE,
  PUBLIC_FILE_MODE,
  type CertInfo,
  type Role,
  type StagedFile,
} from '../auth/index.js';
import {
  buildCertificate,
  CA_KEY_USAGE,
  MEMBER_EKU,
  MEMBER_KEY_USAGE,
  randomSerial,
} from './certificate-builder.js';
import { buildCrl, parseRevocationReason, type RevocationReason } from './crl-builder.js';
import { verifyCsr } from './csr.js';
import { CaError } from './errors.js';
import { DEFAULT_KEY_ALGORITHM, generateKeyPair, type KeyAlgorithm } from './keys.js';
import {
  effectiveStatus,
  emptyStore,
  MAX_RECORDS,
  MAX_STORE_BYTES,
  parseStore,
  serializeStore,
  type CertRecord,
  type StoreData,
} from './store.js';

const DAY_MS = 86_400_000;
export const DEFAULT_CA_DAYS = 3650;
export const DEFAULT_CERT_DAYS = 365;
export const DEFAULT_CRL_DAYS = 7;
export const MAX_CA_DAYS = 36_500;
export const MAX_CERT_DAYS = 3650;
export const MAX_HOSTS = 32;
/** Most certificates one `issueMany` transaction issues (bounds the memory a batch holds). */
export const MAX_ISSUE_BATCH = 10_000;
/** Issued certificates start 5 minutes in the past so a peer whose clock is behind accepts them. */
export const BACKDATE_MS = 5 * 60_000;

export interface CaPaths {
  readonly dir: string;
  readonly cert: string;
  readonly key: string;
  readonly store: string;
  readonly certs: string;
  readonly crl: string;
}

export function caPaths(dir: string): CaPaths {
  return {
    dir,
    cert: join(dir, 'ca.pem'),
    key: join(dir, 'ca.key'),
    store: join(dir, 'store.json'),
    certs: join(dir, 'certs'),
    crl: join(dir, 'crl.pem'),
  };
}

function checkDays(days: number, max: number, what: string): void {
  if (!Number.isInteger(days) || days < 1 || days > max)
    throw new CaError(`${what} must be a whole number of days from 1 to ${max}`);
}

function checkHost(h: string): void {
  const dns =
    /^(?=.{1,253}$)(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
  if (isIP(h) === 0 && !dns.test(h))
    throw new CaError(`--host '${h}' is neither a DNS name nor an IP address`);
}

async function withLock<T>(dir: string, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await withDirLock(dir, fn);
  } catch (e) {
    if (e instanceof DirLockedError) throw new CaError(e.message);
    throw e;
  }
}

/** An issue request that passed validation, with its clock and validity end fixed. */
interface CheckedIssue {
  readonly req: IssueRequest;
  readonly now: Date;
  readonly notAfter: Date;
  readonly hosts: readonly string[];
}

export interface InitOptions {
  readonly dir: string;
  readonly name: string;
  readonly key?: KeyAlgorithm;
  readonly days?: number;
  /** undefined: the key is written unencrypted (operator opted out). */
  readonly passphrase: string | undefined;
  readonly now?: Date;
}

export interface IssueRequest {
  readonly group: string;
  readonly role: Role;
  readonly name: string;
  readonly hosts?: readonly string[];
  readonly days?: number;
  readonly key?: KeyAlgorithm;
  /** Issue for the key in this CSR instead of generating one. */
  readonly csrPem?: string;
  /** Issue even if an active certificate with the same group and name exists. */
  readonly force?: boolean;
  readonly now?: Date;
}

export interface IssueResult {
  readonly certificatePem: string;
  readonly certificate: CertInfo;
  /** The generated key (absent when issued from a CSR). */
  readonly privateKey: KeyObject | undefined;
  readonly record: CertRecord;
}

export type RevokeSelector = { readonly serial: string } | { readonly name: string; readonly group?: string };

export class CertificateAuthority {
  private constructor(
    readonly paths: CaPaths,
    readonly certificate: CertInfo,
    readonly certificatePem: string,
  ) {}

  /** Creates a new CA in `dir` (refuses a directory that already holds one). */
  static async init(opts: InitOptions): Promise<CertificateAuthority> {
    if (!isValidName(opts.name.replace(/ /g, '-')))
      throw new CaError(`CA name '${opts.name}' must be 1-64 characters of letters, digits, space . _ -`);
    const days = opts.days ?? DEFAULT_CA_DAYS;
    checkDays(days, MAX_CA_DAYS, '--days');
    const weak =
      opts.passphrase === undefined ? undefined : newPassphraseProblem(opts.passphrase, 'CA key passphrase');
    if (weak !== undefined) throw new CaError(weak);
    const paths = caPaths(opts.dir);
    if (existsSync(paths.cert)) throw new CaError(`${opts.dir} already holds a CA (ca.pem exists)`);
    try {
      ensureDir(opts.dir);
      ensureDir(paths.certs);
    } catch (e) {
      throw new CaError(`cannot create ${opts.dir} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    return withLock(opts.dir, async () => {
      if (existsSync(paths.cert)) throw new CaError(`${opts.dir} already holds a CA (ca.pem exists)`);
      const now = opts.now ?? new Date();
      const kp = generateKeyPair(opts.key ?? DEFAULT_KEY_ALGORITHM);
      const der = await buildCertificate(
        {
          commonName: opts.name,
          subjectSuffix: 'O=Keyglass',
          publicKey: kp.publicKey,
          notBefore: new Date(now.getTime() - BACKDATE_MS),
          notAfter: new Date(now.getTime() + days * DAY_MS),
          isCa: true,
          pathLength: 0,
          keyUsage: CA_KEY_USAGE,
          extKeyUsage: [],
          sanUris: [],
          hosts: [],
        },
        { certificateDer: undefined, privateKey: kp.privateKey },
      );
      const pem = toPem('CERTIFICATE', der);
      // ca.pem last: a directory with ca.pem always has its key and store.
      writeFilesDurable([
        { path: paths.key, data: encodePrivateKey(kp.privateKey, opts.passphrase), mode: SECRET_FILE_MODE },
        { path: paths.store, data: serializeStore(emptyStore()) },
        { path: paths.cert, data: pem, mode: PUBLIC_FILE_MODE },
      ]);
      return new CertificateAuthority(paths, parseCertificate(der), pem);
    });
  }

  /** Opens an existing CA directory (the private key stays locked until `unlock`). */
  static open(dir: string): CertificateAuthority {
    const paths = caPaths(dir);
    if (!existsSync(paths.cert))
      throw new CaError(`no CA in ${dir} (run keyglass ca init --dir ${dir} first)`);
    const pem = wrapRead(paths.cert, 'CA certificate');
    let certs: CertInfo[];
    try {
      certs = parseCertificatesPem(pem);
    } catch (e) {
      throw new CaError(`CA certificate ${paths.cert}: ${(e as Error).message}`);
    }
    const cert = certs[0] as CertInfo;
    if (certs.length !== 1 || !cert.isCa) throw new CaError(`${paths.cert} is not a single CA certificate`);
    const ca = new CertificateAuthority(paths, cert, pem);
    ca.readStore(); // validate now, so every command fails early on a corrupted store
    return ca;
  }

  /** True when ca.key is encrypted and `unlock` needs a passphrase. */
  keyIsEncrypted(): boolean {
    return wrapRead(this.paths.key, 'CA key').includes('-----BEGIN ENCRYPTED PRIVATE KEY-----');
  }

  unlock(passphrase: string | undefined): KeyObject {
    let key: KeyObject;
    try {
      key = decodePrivateKey(wrapRead(this.paths.key, 'CA key'), passphrase, 'CA key');
    } catch (e) {
      if (e instanceof CredentialError) throw new CaError(e.message);
      throw e;
    }
    if (
      !createPublicKey(key)
        .export({ format: 'der', type: 'spki' })
        .equals(this.certificate.publicKey.export({ format: 'der', type: 'spki' }))
    ) {
      throw new CaError('CA key does not match ca.pem');
    }
    return key;
  }

  readStore(): StoreData {
    return parseStore(wrapRead(this.paths.store, 'CA store', MAX_STORE_BYTES));
  }

  records(): readonly CertRecord[] {
    return this.readStore().certificates;
  }

  private checkUsable(now: Date): void {
    if (this.certificate.notAfter.getTime() < now.getTime()) {
      throw new CaError(
        `the CA certificate expired on ${this.certificate.notAfter.toISOString()}; create a new CA with keyglass ca init`,
      );
    }
  }

  /**
   * Issues a member certificate. `stageOutputs` stages the caller's output files (key,
   * certificate, PKCS#12); they are published after the store commit, and if staging
   * fails nothing is recorded.
   */
  async issue(
    req: IssueRequest,
    caKey: KeyObject,
    stageOutputs?: (r: IssueResult) => StagedFile[],
  ): Promise<IssueResult> {
    const [r] = await this.issueMany([req], caKey, stageOutputs);
    return r!;
  }

  /**
   * Issues up to MAX_ISSUE_BATCH certificates as one transaction: one lock, one store read and
   * one store commit for all of them (issuing one at a time rewrites the whole store each time,
   * O(n) per certificate). Either every certificate is recorded and its outputs published, or
   * none. `stageOutputs` receives each result with its index in `reqs`; `onSigned` hears how many
   * certificates are signed so far (a long batch reports progress; nothing is committed yet).
   */
  async issueMany(
    reqs: readonly IssueRequest[],
    caKey: KeyObject,
    stageOutputs?: (r: IssueResult, index: number) => StagedFile[],
    onSigned?: (done: number, total: number) => void,
  ): Promise<IssueResult[]> {
    if (reqs.length < 1 || reqs.length > MAX_ISSUE_BATCH)
      throw new CaError(`a batch issues 1 to ${MAX_ISSUE_BATCH} certificates (got ${reqs.length})`);
    const checked = reqs.map((r) => this.checkIssue(r));
    const csrs = await Promise.all(
      reqs.map((r) => (r.csrPem !== undefined ? verifyCsr(r.csrPem) : undefined)),
    );
    return withLock(this.paths.dir, async () => {
      const store = this.readStore();
      const serials = new Set(store.certificates.map((r) => r.serial));
      const byName = new Map<string, CertRecord[]>(); // group/name → its certificates
      for (const r of store.certificates) {
        const who = `${r.group}/${r.name}`;
        const list = byName.get(who);
        if (list === undefined) byName.set(who, [r]);
        else list.push(r);
      }
      const inBatch = new Set<string>();
      const results: IssueResult[] = [];
      for (const [i, { req, now, notAfter, hosts }] of checked.entries()) {
        const who = `${req.group}/${req.name}`;
        if (!req.force) {
          if (inBatch.has(who)) throw new CaError(`${who} appears twice in this batch; nothing was issued`);
          const dup = byName.get(who)?.find((r) => effectiveStatus(r, now) === 'active');
          if (dup)
            throw new CaError(
              `an active certificate for ${who} exists (serial ${dup.serial}); revoke it or use --force`,
            );
        }
        inBatch.add(who);
        const csr = csrs[i];
        const kp = csr ? undefined : generateKeyPair(req.key ?? DEFAULT_KEY_ALGORITHM);
        const publicKey = csr ? csr.publicKey : (kp as NonNullable<typeof kp>).publicKey;
        let serial = randomSerial();
        while (serials.has(serial)) serial = randomSerial();
        serials.add(serial);
        const notBefore = new Date(
          Math.max(now.getTime() - BACKDATE_MS, this.certificate.notBefore.getTime()),
        );
        const der = await buildCertificate(
          {
            commonName: req.name,
            publicKey,
            serial,
            notBefore,
            notAfter,
            isCa: false,
            keyUsage: MEMBER_KEY_USAGE,
            extKeyUsage: MEMBER_EKU,
            sanUris: [identityUri({ group: req.group, role: req.role, name: req.name })],
            hosts,
          },
          { certificateDer: this.certificate.der, privateKey: caKey },
        );
        const cert = parseCertificate(der);
        results.push({
          certificatePem: toPem('CERTIFICATE', der),
          certificate: cert,
          privateKey: kp?.privateKey,
          record: {
            serial: cert.serial,
            subject: cert.subject,
            group: req.group,
            role: req.role,
            name: req.name,
            issuedAt: now.toISOString(),
            notBefore: cert.notBefore.toISOString(),
            notAfter: cert.notAfter.toISOString(),
            sha256: cert.sha256,
            status: 'active',
            revokedAt: null,
            reason: null,
          },
        });
        onSigned?.(results.length, checked.length);
      }
      const next: StoreData = {
        ...store,
        certificates: [...store.certificates, ...results.map((r) => r.record)],
      };
      if (next.certificates.length > MAX_RECORDS)
        throw new CaError(`the store holds at most ${MAX_RECORDS} certificates; nothing was issued`);
      const certFiles: StagedFile[] = [];
      const outputs: StagedFile[] = [];
      let storeFile: StagedFile | undefined;
      try {
        ensureDir(this.paths.certs);
        for (const r of results)
          certFiles.push(stageFile(join(this.paths.certs, `${r.certificate.serial}.pem`), r.certificatePem));
        storeFile = stageFile(this.paths.store, serializeStore(next));
        if (stageOutputs) for (const [i, r] of results.entries()) outputs.push(...stageOutputs(r, i));
      } catch (e) {
        for (const s of [...certFiles, ...(storeFile ? [storeFile] : []), ...outputs]) s.abort();
        if (e instanceof CaError) throw e;
        throw new CaError(
          `cannot write output (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); nothing was issued`,
        );
      }
      // certs/<serial>.pem, then store.json (the commit point), then the caller's outputs.
      for (const s of certFiles) s.commit();
      storeFile.commit();
      for (const s of outputs) s.commit();
      return results;
    });
  }

  /** Validates one request before the lock is taken (bad input fails without touching the store). */
  private checkIssue(req: IssueRequest): CheckedIssue {
    if (!isValidName(req.group))
      throw new CaError(`group '${req.group}' must be 1-64 characters of [A-Za-z0-9._-]`);
    if (!isValidName(req.name))
      throw new CaError(`name '${req.name}' must be 1-64 characters of [A-Za-z0-9._-]`);
    const hosts = req.hosts ?? [];
    if (hosts.length > MAX_HOSTS) throw new CaError(`at most ${MAX_HOSTS} --host values`);
    hosts.forEach(checkHost);
    const days = req.days ?? DEFAULT_CERT_DAYS;
    checkDays(days, MAX_CERT_DAYS, '--days');
    const now = req.now ?? new Date();
    this.checkUsable(now);
    const notAfter = new Date(now.getTime() + days * DAY_MS);
    if (notAfter.getTime() > this.certificate.notAfter.getTime()) {
      throw new CaError(
        `--days ${days} would outlive the CA certificate (valid until ${this.certificate.notAfter.toISOString()})`,
      );
    }
    return { req, now, notAfter, hosts };
  }

  /** Marks certificates revoked in the store (publish with `createCrl`). */
  async revoke(sel: RevokeSelector, reasonText = 'unspecified', now = new Date()): Promise<CertRecord[]> {
    const reason: RevocationReason | undefined = parseRevocationReason(reasonText);
    if (!reason) throw new CaError(`unknown revocation reason '${reasonText}'`);
    return withLock(this.paths.dir, () => {
      const store = this.readStore();
      let targets: CertRecord[];
      if ('serial' in sel) {
        const serial = normalizeSerial(sel.serial.replace(/:/g, ''));
        if (!/^[0-9a-f]+$/.test(serial)) throw new CaError(`serial '${sel.serial}' is not hexadecimal`);
        const r = store.certificates.find((c) => c.serial === serial);
        if (!r) throw new CaError(`unknown serial ${serial}`);
        if (r.status === 'revoked') throw new CaError(`serial ${serial} is already revoked`);
        targets = [r];
      } else {
        targets = store.certificates.filter(
          (c) =>
            c.name === sel.name &&
            (sel.group === undefined || c.group === sel.group) &&
            c.status === 'active',
        );
        if (targets.length === 0)
          throw new CaError(
            `no unrevoked certificate named '${sel.name}'${sel.group ? ` in group '${sel.group}'` : ''}`,
          );
        const groups = new Set(targets.map((t) => t.group));
        if (groups.size > 1)
          throw new CaError(`'${sel.name}' exists in groups ${[...groups].join(', ')}; add --group`);
      }
      const serials = new Set(targets.map((t) => t.serial));
      const revokedAt = now.toISOString();
      const certificates = store.certificates.map((c) =>
        serials.has(c.serial) ? { ...c, status: 'revoked' as const, revokedAt, reason } : c,
      );
      writeFileDurable(this.paths.store, serializeStore({ ...store, certificates }));
      return certificates.filter((c) => serials.has(c.serial));
    });
  }

  /** Signs a CRL of every revoked certificate, with the next CRL number, and writes it to `outPath`. */
  async createCrl(
    caKey: KeyObject,
    opts: { days?: number; outPath?: string; now?: Date } = {},
  ): Promise<{ pem: string; crlNumber: bigint; path: string }> {
    const days = opts.days ?? DEFAULT_CRL_DAYS;
    checkDays(days, 366, '--days');
    const now = opts.now ?? new Date();
    this.checkUsable(now);
    const path = opts.outPath ?? this.paths.crl;
    return withLock(this.paths.dir, async () => {
      const store = this.readStore();
      const crlNumber = BigInt(store.crlNumber) + 1n;
      const der = await buildCrl({
        caCertificateDer: this.certificate.der,
        caPrivateKey: caKey,
        crlNumber,
        thisUpdate: now,
        nextUpdate: new Date(now.getTime() + days * DAY_MS),
        entries: store.certificates
          .filter((c) => c.status === 'revoked')
          .map((c) => ({
            serial: c.serial,
            revokedAt: new Date(c.revokedAt as string),
            reason: parseRevocationReason(c.reason ?? '') ?? 'unspecified',
          })),
      });
      const pem = toPem('X509 CRL', der);
      let out: StagedFile;
      try {
        out = stageFile(path, pem);
      } catch (e) {
        throw new CaError(`cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      // The number is consumed first: a crash before the CRL lands skips a number, never reuses one.
      try {
        writeFileDurable(this.paths.store, serializeStore({ ...store, crlNumber: crlNumber.toString() }));
      } catch (e) {
        out.abort();
        throw e;
      }
      out.commit();
      return { pem, crlNumber, path };
    });
  }
}

function wrapRead(path: string, what: string, maxBytes?: number): string {
  try {
    return readTextFile(path, what, maxBytes);
  } catch (e) {
    if (e instanceof CredentialError) throw new CaError(e.message);
    throw e;
  }
}
