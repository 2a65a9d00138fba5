import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { AgateConfig, ClientTlsConfig, SecretRef } from './config.js';
import { ConfigError } from './errors.js';

/** The services of one process (as `agate start|proxy|policy|ledger|query` run them). */
export type FileRole = 'proxy' | 'policy' | 'ledger' | 'query';

/** A file the config names that Agate could not use as it stands. */
export interface FileProblem {
  /** The config key that names the file, e.g. `targets[0].tls.key`. */
  key: string;
  path: string;
  problem: string;
  /** False for what only goes wrong later (a SAML IdP certificate is read at each sign-in): reported, not refused. */
  fatal: boolean;
}

/** What the file must hold. */
type Kind = 'file' | 'certs' | 'key' | 'ssh-key';

interface Named {
  key: string;
  path: string;
  kind: Kind;
  /** A file Agate creates when it is missing (the SSH host key, the embedded bus's signing key). */
  created?: boolean;
  /** A file read at each use, so it may be put in place after the start. */
  later?: boolean;
  /** The key of the certificate this private key must match. */
  certOf?: string;
}

/**
 * Every file `config` names (for `roles`: the ones their services read), each read and, where it
 * holds PEM or an SSH key, parsed; a private key is checked against its certificate. Nothing is
 * written or created.
 */
export function configFileProblems(config: AgateConfig, roles: readonly FileRole[] = ['proxy', 'policy', 'ledger', 'query']): FileProblem[] {
  const named = namedFiles(config, roles);
  const problems: FileProblem[] = [];
  const certs = new Map<string, X509Certificate>();
  const keys: { n: Named; key: KeyObject }[] = [];
  for (const n of named) {
    const read = readNamed(n.path);
    if (typeof read === 'string') {
      if (read === 'ENOENT' && n.created === true) continue;
      problems.push({ key: n.key, path: n.path, problem: read === 'ENOENT' ? 'no such file' : read, fatal: n.later !== true });
      continue;
    }
    const parsed = parse(n.kind, read);
    if (typeof parsed === 'string') {
      problems.push({ key: n.key, path: n.path, problem: parsed, fatal: n.later !== true });
      continue;
    }
    if (parsed instanceof X509Certificate) certs.set(n.key, parsed);
    else if (parsed !== undefined) keys.push({ n, key: parsed });
  }
  for (const { n, key } of keys) {
    const cert = n.certOf === undefined ? undefined : certs.get(n.certOf);
    if (cert !== undefined && !cert.checkPrivateKey(key)) {
      problems.push({ key: n.key, path: n.path, problem: `does not match the certificate in ${n.certOf} (${cert.subject.replace(/\n/g, ', ')})`, fatal: true });
    }
  }
  // In the order the keys are listed (sort is stable).
  const order = new Map(named.map((n, i) => [n.key, i]));
  return problems.sort((a, b) => order.get(a.key)! - order.get(b.key)!);
}

/** The problems as lines `SOURCE: KEY: PATH: PROBLEM`, the fatal ones first. */
export function describeFileProblems(source: string, problems: readonly FileProblem[]): string[] {
  return [...problems].sort((a, b) => Number(b.fatal) - Number(a.fatal)).map((p) => `${source}: ${p.key}: ${p.path}: ${p.problem}`);
}

/** Throws one ConfigError listing every fatal problem; returns the others (to be logged as warnings). */
export function assertConfigFiles(config: AgateConfig, roles?: readonly FileRole[]): FileProblem[] {
  const problems = configFileProblems(config, roles);
  const fatal = problems.filter((p) => p.fatal);
  if (fatal.length > 0) throw new ConfigError(`files the configuration names cannot be used\n  ${describeFileProblems(config.source, fatal).join('\n  ')}`);
  return problems;
}

function namedFiles(cfg: AgateConfig, roles: readonly FileRole[]): Named[] {
  const out: Named[] = [];
  const file = (key: string, path: string | undefined, kind: Kind = 'file', more: Partial<Named> = {}) => {
    if (path !== undefined) out.push({ key, path, kind, ...more });
  };
  const secret = (key: string, ref: SecretRef | undefined, kind: Kind = 'file', more: Partial<Named> = {}) => file(`${key}.file`, ref?.file, kind, more);
  const pair = (key: string, tls: { cert: string; key: string } | undefined) => {
    file(`${key}.cert`, tls?.cert, 'certs');
    file(`${key}.key`, tls?.key, 'key', { certOf: `${key}.cert` });
  };
  const client = (key: string, tls: ClientTlsConfig | undefined) => {
    file(`${key}.ca`, tls?.ca, 'certs');
    file(`${key}.cert`, tls?.cert, 'certs');
    file(`${key}.key`, tls?.key, 'key', { certOf: `${key}.cert` });
  };
  if (roles.includes('proxy')) {
    for (const [i, t] of cfg.targets.entries()) {
      const at = `targets[${i}]`;
      if (t.protocol === 'kubernetes') {
        file(`${at}.upstream.kubeconfig`, t.upstream.kubeconfig);
        pair(`${at}.tls`, t.tls);
        file(`${at}.tls.ca`, t.tls.ca, 'certs');
        continue;
      }
      secret(`${at}.upstream.password`, t.upstream.password);
      // The CA is read only to verify (verify-full).
      if (t.protocol === 'postgres') file(`${at}.upstream.tls.ca`, t.upstream.tls.mode === 'verify-full' ? t.upstream.tls.ca : undefined, 'certs');
      else file(`${at}.upstream.private_key_file`, t.upstream.private_key_file, 'ssh-key');
    }
    pair('proxy.postgres.tls', cfg.proxy.postgres.tls);
    if (cfg.proxy.ssh !== undefined) file('proxy.ssh.host_key_file', cfg.proxy.ssh.host_key_file, 'ssh-key', { created: true });
  }
  if (roles.includes('policy')) for (const [i, w] of cfg.approvals.webhooks.entries()) file(`approvals.webhooks[${i}].secret_file`, w.secret_file);
  // On Kafka every ledger instance signs with one key an operator puts in place; the embedded bus makes its own.
  if (roles.includes('ledger')) file('ledger.signing_key', cfg.ledger.signing_key, 'file', { created: cfg.bus.kind !== 'kafka' });
  if (roles.includes('query')) {
    pair('query.tls', cfg.query.tls);
    secret('query.export.hec_token', cfg.query.export.hec_token);
    secret('console.oidc.client_secret', cfg.console?.oidc?.client_secret);
    const saml = cfg.console?.saml;
    file('console.saml.idp_cert_file', saml?.idp_cert_file, 'certs', { later: true });
    file('console.saml.sp_signing.cert_file', saml?.sp_signing?.cert_file, 'certs');
    secret('console.saml.sp_signing.key', saml?.sp_signing?.key, 'key', { certOf: 'console.saml.sp_signing.cert_file' });
  }
  if (cfg.bus.kind === 'kafka') {
    client('bus.tls', cfg.bus.tls);
    secret('bus.sasl.password', cfg.bus.sasl?.password);
    client('bus.schema_registry.tls', cfg.bus.schema_registry?.tls);
    secret('bus.schema_registry.password', cfg.bus.schema_registry?.password);
    secret('bus.schema_registry.token', cfg.bus.schema_registry?.token);
  }
  if (cfg.store.kind === 'clickhouse') {
    client('store.tls', cfg.store.tls);
    secret('store.password', cfg.store.password);
  }
  return out;
}

/** The file's bytes, or why they cannot be had (`ENOENT` for a missing file). */
function readNamed(path: string): Buffer | string {
  try {
    const st = statSync(path);
    if (st.isDirectory()) return 'is a directory, not a file';
    if (!st.isFile()) return 'is not a regular file';
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'ENOENT';
    if (code === 'EACCES' || code === 'EPERM') return 'cannot be read by this user (permission denied)';
    if (code === 'ENOTDIR') return 'no such file (a part of the path is not a directory)';
    return `cannot be read: ${(err as Error).message}`;
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The first certificate, the private key, or what is wrong with the file; undefined for a file that is only read. */
function parse(kind: Kind, bytes: Buffer): X509Certificate | KeyObject | string | undefined {
  if (kind === 'file') return undefined;
  const text = bytes.toString('latin1');
  if (kind === 'certs') {
    const blocks = text.match(PEM_CERT) ?? [];
    if (blocks.length === 0) return 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)';
    let first: X509Certificate | undefined;
    for (const [i, block] of blocks.entries()) {
      try {
        first ??= new X509Certificate(block);
        if (i > 0) new X509Certificate(block);
      } catch (err) {
        return `certificate ${i + 1} of ${blocks.length} does not parse: ${(err as Error).message}`;
      }
    }
    return first;
  }
  if (kind === 'key') {
    try {
      return createPrivateKey(bytes);
    } catch (err) {
      return `holds no private key Agate can read (PEM, unencrypted): ${(err as Error).message}`;
    }
  }
  const key = ssh2.utils.parseKey(bytes);
  if (key instanceof Error) return `holds no SSH private key Agate can read (OpenSSH or PEM, unencrypted): ${key.message}`;
  const first = Array.isArray(key) ? key[0] : key;
  if (first === undefined || !first.isPrivateKey()) return 'holds a public key; expected the private key';
  return undefined;
}
