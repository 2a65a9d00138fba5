// A throw-away certificate authority for tests: a CA, a server certificate for 127.0.0.1 and
// localhost, and client certificates, made with the real openssl into a directory the caller owns.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeFailure, run } from './proc.js';

export interface TestCa {
  /** The CA certificate (PEM), for clients that verify the server. */
  ca: string;
  server: { cert: string; key: string };
  /** A client certificate signed by the same CA, for mutual TLS. */
  client(name: string): Promise<{ cert: string; key: string }>;
}

async function openssl(args: string[]): Promise<void> {
  const r = await run('openssl', args, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(describeFailure('openssl', args, r));
}

// RSA rather than EC: every server in the harness (Java's TLS too) takes it without extra settings.
const NEW_KEY = ['-newkey', 'rsa:2048', '-nodes'];

export async function makeTestCa(dir: string): Promise<TestCa> {
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  await openssl(['req', '-x509', ...NEW_KEY, '-days', '2', '-subj', '/CN=agate test CA', '-keyout', caKey, '-out', ca]);
  const issue = async (name: string, ext: string) => {
    const [key, csr, cert, extFile] = ['key', 'csr', 'crt', 'ext'].map((x) => join(dir, `${name}.${x}`)) as [string, string, string, string];
    await openssl(['req', ...NEW_KEY, '-subj', `/CN=${name}`, '-keyout', key, '-out', csr]);
    await writeFile(extFile, ext);
    await openssl(['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-days', '2', '-extfile', extFile, '-out', cert]);
    return { cert, key };
  };
  const server = await issue('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  return { ca, server, client: (name) => issue(name, 'extendedKeyUsage=clientAuth\n') };
}
