/** `keyglass ca` — the certificate authority: init, issue, revoke, crl, list, inspect. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  CredentialError,
  encodePrivateKey,
  weakKeyFileWarning,
  isRole,
  type Role,
  PolicyError,
  stageFile,
  SECRET_FILE_MODE,
  type StagedFile,
} from '../auth/index.js';
import {
  buildPkcs12,
  CaError,
  CertificateAuthority,
  effectiveStatus,
  formatInspection,
  inspectPem,
  isKeyAlgorithm,
  KEY_ALGORITHMS,
  MAX_ISSUE_BATCH,
  type IssueResult,
  type KeyAlgorithm,
} from '../ca-tools/index.js';
import { CliError, parseFlags, type Command } from './command.js';
import { resolvePassphrase } from './ca-passphrase.js';

/** Detailed help per subcommand: `keyglass ca <sub> --help`. */
const SUBCOMMAND_HELP: Readonly<Record<string, string>> = {
  init: `Usage: keyglass ca init --dir DIR --name NAME [--key ed25519|p256|rsa3072] [--days N]
                        [--passphrase-file F | --insecure-no-passphrase]

Creates a self-signed root CA in DIR (which must not hold one): ca.pem (the trust anchor servers
and leaves are configured with), ca.key (encrypted PKCS#8: AES-256-CBC under PBKDF2-HMAC-SHA256,
600,000 iterations; mode 0600) and an empty issuance database. --key defaults to ed25519; --days
to 3650 (at most 36500). The passphrase (at least 12 characters) comes from --passphrase-file,
KEYGLASS_CA_PASSPHRASE or a terminal prompt; --insecure-no-passphrase stores the key unencrypted
(throwaway CAs only).`,
  issue: `Usage: keyglass ca issue --dir DIR --group G --role core|leaf|operator --name N
                         [--host H]... [--days N] [--key ALG | --csr FILE] [--out PREFIX]
                         [--count K] [--p12] [--force] [--passphrase-file F]
                         [--key-passphrase-file F | --insecure-no-passphrase]

Issues a member certificate: subject CN = N, SAN URI keyglass://G/ROLE/N, plus a DNS/IP SAN for
each --host (core servers: the names and addresses leaves and peers dial). Writes PREFIX.pem
(certificate + chain), PREFIX.key (a new private key, encrypted unless --insecure-no-passphrase;
not written with --csr, whose owner keeps the key) and PREFIX.p12 with --p12. PREFIX defaults to
N. --days defaults to 365 (at most 3650); --key to ed25519 (p256, rsa3072). Existing output files
are refused unless --force (the old certificate stays valid until revoked). The CA key's
passphrase: --passphrase-file, KEYGLASS_CA_PASSPHRASE or a prompt; the new key's (and the
PKCS#12 password; at least 12 characters): --key-passphrase-file, KEYGLASS_KEY_PASSPHRASE or a
prompt. --count K issues K
certificates in one transaction (all or none), named N-0 … N-(K-1) with outputs PREFIX-0 … (K at
most ${MAX_ISSUE_BATCH}; not with --csr).`,
  revoke: `Usage: keyglass ca revoke --dir DIR (--serial S | --name N [--group G]) [--reason R]

Marks certificates revoked in the CA database (by serial, or every active certificate of a name,
optionally limited to one group). Servers learn it from the next CRL: run keyglass ca crl and
publish the file at each server's configured crl path; they reload it within crlPollMs, evict the
revoked leaves in an immediate batch and close their connections. Reasons: unspecified,
keyCompromise, caCompromise, affiliationChanged, superseded, cessationOfOperation,
privilegeWithdrawn.`,
  crl: `Usage: keyglass ca crl --dir DIR [--out FILE] [--days N] [--passphrase-file F]

Signs a CRL of every revoked certificate with the next CRL number (servers refuse a CRL older
than the one they hold) and writes it atomically to FILE (default DIR/crl.pem). --days is the
nextUpdate horizon (default 7, at most 366): publish a fresh CRL before it passes.`,
  list: `Usage: keyglass ca list --dir DIR [--json]

Lists every certificate the CA issued: serial, group/role/name, status (active, revoked,
expired), validity.`,
  inspect: `Usage: keyglass ca inspect FILE [--json]

Describes each PEM item in FILE (certificate, CSR or CRL): subject, issuer, SAN URIs and hosts,
key algorithm, validity, fingerprint; for a CRL its number, dates and revoked serials.`,
};

const HELP = `Usage: keyglass ca <subcommand> [options]     (keyglass ca <subcommand> --help for details)

  init    --dir DIR --name NAME [--key ed25519|p256|rsa3072] [--days N]
          [--passphrase-file F | --insecure-no-passphrase]
          Create a self-signed root CA; its key is encrypted (PKCS#8, PBKDF2-SHA256 600,000).
  issue   --dir DIR --group G --role core|leaf|operator --name N [--host H]... [--days N]
          [--key ALG] [--csr FILE] [--out PREFIX] [--p12] [--force]
          [--key-passphrase-file F | --insecure-no-passphrase]
          Issue PREFIX.pem (+ PREFIX.key unless --csr, + PREFIX.p12 with --p12).
  revoke  --dir DIR (--serial S | --name N [--group G]) [--reason R]
  crl     --dir DIR [--out FILE] [--days N]       Sign a CRL with the next CRL number.
  list    --dir DIR [--json]
  inspect FILE [--json]                           Describe a certificate, CSR or CRL.

Passphrases: the CA key's from --passphrase-file, KEYGLASS_CA_PASSPHRASE, or a terminal prompt;
a member key's (and the PKCS#12 password) from --key-passphrase-file, KEYGLASS_KEY_PASSPHRASE,
or a prompt. A new key's passphrase needs at least 12 characters; key files of earlier releases
(2,048 iterations) still open, with a warning. --dir defaults to KEYGLASS_CA_DIR. Revocation reasons: unspecified, keyCompromise,
caCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn.`;

function dirOf(v: string | undefined): string {
  const dir = v ?? process.env['KEYGLASS_CA_DIR'];
  if (!dir) throw new CliError('--dir is required (or set KEYGLASS_CA_DIR)', 2);
  return dir;
}

function daysOf(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]{1,6}$/.test(v)) throw new CliError(`--days '${v}' is not a whole number`, 2);
  return Number(v);
}

function keyAlgOf(v: string | undefined): KeyAlgorithm | undefined {
  if (v === undefined) return undefined;
  if (!isKeyAlgorithm(v)) throw new CliError(`--key must be one of ${KEY_ALGORITHMS.join(', ')}`, 2);
  return v;
}

async function unlockCa(ca: CertificateAuthority, passphraseFile: string | undefined) {
  // Keys of earlier releases (2,048 iterations) still open, with a nudge.
  const warning = weakKeyFileWarning(readFileSync(ca.paths.key, 'utf8'), ca.paths.key);
  if (warning !== undefined) console.error(`keyglass ca: warning: ${warning}`);
  const passphrase = ca.keyIsEncrypted()
    ? await resolvePassphrase(
        {
          file: passphraseFile,
          envVar: 'KEYGLASS_CA_PASSPHRASE',
          what: 'CA key passphrase',
          fileFlag: '--passphrase-file',
        },
        false,
      )
    : undefined;
  return ca.unlock(passphrase);
}

async function init(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    dir: { type: 'string' },
    name: { type: 'string' },
    key: { type: 'string' },
    days: { type: 'string' },
    'passphrase-file': { type: 'string' },
    'insecure-no-passphrase': { type: 'boolean' },
  });
  const dir = dirOf(values.dir);
  if (!values.name) throw new CliError('--name is required', 2);
  if (values['insecure-no-passphrase'] && values['passphrase-file'])
    throw new CliError('--passphrase-file and --insecure-no-passphrase exclude each other', 2);
  const key = keyAlgOf(values.key);
  const days = daysOf(values.days);
  if (existsSync(resolve(dir, 'ca.pem'))) throw new CliError(`${dir} already holds a CA (ca.pem exists)`);
  const passphrase = values['insecure-no-passphrase']
    ? undefined
    : await resolvePassphrase(
        {
          file: values['passphrase-file'],
          envVar: 'KEYGLASS_CA_PASSPHRASE',
          what: 'CA key passphrase',
          fileFlag: '--passphrase-file',
        },
        true,
      );
  const ca = await CertificateAuthority.init({
    dir,
    name: values.name,
    ...(key ? { key } : {}),
    ...(days ? { days } : {}),
    passphrase,
  });
  console.log(
    `created CA '${ca.certificate.subject}' in ${dir} (${ca.certificate.keyKind}, valid until ${ca.certificate.notAfter.toISOString()}${passphrase === undefined ? ', key NOT encrypted' : ''})`,
  );
  return 0;
}

async function issue(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    dir: { type: 'string' },
    group: { type: 'string' },
    role: { type: 'string' },
    name: { type: 'string' },
    host: { type: 'string', multiple: true },
    days: { type: 'string' },
    key: { type: 'string' },
    csr: { type: 'string' },
    out: { type: 'string' },
    count: { type: 'string' },
    p12: { type: 'boolean' },
    force: { type: 'boolean' },
    'passphrase-file': { type: 'string' },
    'key-passphrase-file': { type: 'string' },
    'insecure-no-passphrase': { type: 'boolean' },
  });
  const dir = dirOf(values.dir);
  if (!values.group) throw new CliError('--group is required', 2);
  if (!values.name) throw new CliError('--name is required', 2);
  if (!values.role || !isRole(values.role)) throw new CliError('--role must be core, leaf or operator', 2);
  const group = values.group;
  const role: Role = values.role;
  if (values.csr !== undefined && values.key !== undefined)
    throw new CliError('--csr and --key exclude each other (the CSR carries the key)', 2);
  if (values.csr !== undefined && values.p12)
    throw new CliError('--p12 needs the private key, which stays with the CSR owner', 2);
  const key = keyAlgOf(values.key);
  const days = daysOf(values.days);
  const count = countOf(values.count);
  if (count !== undefined && values.csr !== undefined)
    throw new CliError('--count and --csr exclude each other (a CSR carries one key)', 2);
  const name = values.name;
  const names = count === undefined ? [name] : Array.from({ length: count }, (_, i) => `${name}-${i}`);
  const prefixOf = (i: number): string =>
    count === undefined ? (values.out ?? name) : `${values.out ?? name}-${i}`;
  const outputsOf = (i: number): string[] => [
    `${prefixOf(i)}.pem`,
    ...(values.csr === undefined ? [`${prefixOf(i)}.key`] : []),
    ...(values.p12 ? [`${prefixOf(i)}.p12`] : []),
  ];
  // Before any work (passphrases, keys, signatures): a folder that is not there fails now, named.
  const outDir = dirname(resolve(prefixOf(0)));
  if (!existsSync(outDir) || !statSync(outDir).isDirectory())
    throw new CliError(`--out: folder ${outDir} does not exist (create it first)`);
  if (!values.force) {
    const existing = names.flatMap((_, i) => outputsOf(i)).find((f) => existsSync(f));
    if (existing) throw new CliError(`${existing} exists; choose another --out or use --force`);
  }
  let csrPem: string | undefined;
  if (values.csr !== undefined) {
    try {
      csrPem = readFileSync(values.csr, 'utf8');
    } catch (e) {
      throw new CliError(`cannot read CSR ${values.csr} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  const ca = CertificateAuthority.open(dir);
  const caKey = await unlockCa(ca, values['passphrase-file']);
  let keyPassphrase: string | undefined;
  if (csrPem === undefined && (values.p12 || !values['insecure-no-passphrase'])) {
    keyPassphrase = await resolvePassphrase(
      {
        file: values['key-passphrase-file'],
        envVar: 'KEYGLASS_KEY_PASSPHRASE',
        what: 'member key passphrase',
        fileFlag: '--key-passphrase-file',
      },
      true,
    );
  }
  // --count: progress on stderr (stdout keeps the one result line), about ten lines per phase
  // whatever the count: signing, then writing the files (key encryption and PKCS#12 are slow too).
  const progressEvery = count === undefined ? 0 : Math.max(1, Math.ceil(count / 10));
  const progress = (what: string, done: number): void => {
    if (progressEvery > 0 && (done % progressEvery === 0 || done === count))
      process.stderr.write(`keyglass ca issue: ${what} ${done}/${count}\n`);
  };
  let outputsStaged = 0;
  const stageOutputs = (r: IssueResult, i: number): StagedFile[] => {
    const prefix = prefixOf(i);
    const staged: StagedFile[] = [stageFile(`${prefix}.pem`, r.certificatePem)];
    if (r.privateKey) {
      staged.push(
        stageFile(
          `${prefix}.key`,
          encodePrivateKey(r.privateKey, values['insecure-no-passphrase'] ? undefined : keyPassphrase),
          SECRET_FILE_MODE,
        ),
      );
      if (values.p12) {
        const p12 = buildPkcs12({
          privateKey: r.privateKey,
          certificatesDer: [r.certificate.der, ca.certificate.der],
          password: keyPassphrase as string,
          friendlyName: r.record.name,
        });
        staged.push(stageFile(`${prefix}.p12`, p12, SECRET_FILE_MODE));
      }
    }
    progress('files written', ++outputsStaged);
    return staged;
  };
  const issued = await ca.issueMany(
    names.map((n) => ({
      group,
      role,
      name: n,
      hosts: values.host ?? [],
      ...(days ? { days } : {}),
      ...(key ? { key } : {}),
      ...(csrPem !== undefined ? { csrPem } : {}),
      force: values.force === true,
    })),
    caKey,
    stageOutputs,
    (done) => progress('signed', done),
  );
  const first = issued[0]!.record;
  if (count === undefined)
    console.log(
      `issued serial ${first.serial} keyglass://${first.group}/${first.role}/${first.name} until ${first.notAfter}: ${outputsOf(0).join(', ')}`,
    );
  else
    console.log(
      `issued ${issued.length} certificates keyglass://${first.group}/${first.role}/${name}-0 … ${name}-${issued.length - 1} until ${first.notAfter}: ${outputsOf(0).join(', ')} … ${outputsOf(issued.length - 1).join(', ')}`,
    );
  return 0;
}

function countOf(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = /^[0-9]{1,6}$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= MAX_ISSUE_BATCH))
    throw new CliError(`--count must be a whole number from 1 to ${MAX_ISSUE_BATCH}`, 2);
  return n;
}

async function revoke(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    dir: { type: 'string' },
    serial: { type: 'string' },
    name: { type: 'string' },
    group: { type: 'string' },
    reason: { type: 'string' },
  });
  const dir = dirOf(values.dir);
  if ((values.serial === undefined) === (values.name === undefined))
    throw new CliError('give exactly one of --serial or --name', 2);
  const ca = CertificateAuthority.open(dir);
  const sel =
    values.serial !== undefined
      ? { serial: values.serial }
      : { name: values.name as string, ...(values.group ? { group: values.group } : {}) };
  const revoked = await ca.revoke(sel, values.reason ?? 'unspecified');
  for (const r of revoked)
    console.log(`revoked serial ${r.serial} ${r.group}/${r.role}/${r.name} (${r.reason})`);
  console.log('run keyglass ca crl to publish the revocation');
  return 0;
}

async function crl(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    dir: { type: 'string' },
    out: { type: 'string' },
    days: { type: 'string' },
    'passphrase-file': { type: 'string' },
  });
  const ca = CertificateAuthority.open(dirOf(values.dir));
  const days = daysOf(values.days);
  const caKey = await unlockCa(ca, values['passphrase-file']);
  const r = await ca.createCrl(caKey, {
    ...(days ? { days } : {}),
    ...(values.out ? { outPath: values.out } : {}),
  });
  const count = ca.records().filter((c) => c.status === 'revoked').length;
  console.log(`wrote CRL number ${r.crlNumber} (${count} revoked) to ${r.path}`);
  return 0;
}

async function list(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { dir: { type: 'string' }, json: { type: 'boolean' } });
  const ca = CertificateAuthority.open(dirOf(values.dir));
  const now = new Date();
  const rows = ca.records().map((r) => ({ ...r, status: effectiveStatus(r, now) }));
  if (values.json) {
    console.log(JSON.stringify(rows, null, 2));
    return 0;
  }
  if (rows.length === 0) console.log('no certificates issued');
  for (const r of rows) {
    console.log(
      `${r.serial.padEnd(32)}  ${r.status.padEnd(7)}  ${`${r.group}/${r.role}/${r.name}`.padEnd(40)}  until ${r.notAfter}${r.reason ? `  (${r.reason})` : ''}`,
    );
  }
  return 0;
}

async function inspect(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { json: { type: 'boolean' } }, true);
  const [file, ...extra] = positionals;
  if (file === undefined || extra.length > 0) throw new CliError('give exactly one FILE to inspect', 2);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const items = await inspectPem(text);
  console.log(
    values.json
      ? JSON.stringify(items.length === 1 ? items[0] : items, null, 2)
      : items.map(formatInspection).join('\n'),
  );
  return 0;
}

const SUBCOMMANDS: Readonly<Record<string, (argv: string[]) => Promise<number>>> = {
  init,
  issue,
  revoke,
  crl,
  list,
  inspect,
};

export const caCommand: Command = {
  name: 'ca',
  summary: 'certificate authority: init, issue, revoke, crl, list, inspect',
  help: HELP,
  subcommandHelp: SUBCOMMAND_HELP,
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    const fn = sub === undefined ? undefined : SUBCOMMANDS[sub];
    if (!fn)
      throw new CliError(
        sub === undefined
          ? 'missing subcommand (init, issue, revoke, crl, list, inspect)'
          : `unknown subcommand '${sub}'`,
        2,
      );
    try {
      return await fn(rest);
    } catch (e) {
      // Library errors are the user's to fix: one line, no stack.
      if (e instanceof CaError || e instanceof CredentialError || e instanceof PolicyError)
        throw new CliError(e.message);
      throw e;
    }
  },
};
