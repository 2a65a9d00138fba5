// A real Kubernetes API server for integration tests: etcd plus kube-apiserver on loopback, with
// their own PKI in a temp dir. No kubelet, scheduler or controller-manager: objects are stored and
// served (RBAC, admission, watch, discovery all real) but pods never run and a deleted namespace
// stays Terminating.
//
// The binaries (and a kubectl of the same minor) are built from Go modules by install-kube.sh and
// cached under ~/.cache/agate/kube-<version>/bin; test/run.sh builds them before the suite starts.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { findFreePort } from './postgres.js';
import { runInstaller } from './installer.js';
import { describeFailure, run, type RunResult } from './proc.js';

interface KubeTlsPair {
  caFile: string;
  caPem: string;
  /** A certificate signed by this CA for 127.0.0.1 / localhost (server and client usage). */
  certFile: string;
  keyFile: string;
}

interface KubeconfigOptions {
  /** Default: the API server's own URL. */
  server?: string;
  /** CA that verifies `server`. Default: the API server's CA. */
  caFile?: string;
  /** Bearer token; otherwise a client certificate (default: the admin one). */
  token?: string;
  clientCertFile?: string;
  clientKeyFile?: string;
  /** Where to write it. Default: a new file in the server's temp dir. */
  path?: string;
}

interface KubectlOptions {
  /** Default: the admin kubeconfig. */
  kubeconfig?: string;
  input?: string;
  timeoutMs?: number;
}

export interface KubeApiServer {
  /** `https://127.0.0.1:PORT`. */
  url: string;
  host: '127.0.0.1';
  port: number;
  /** Kubernetes version, e.g. `v1.37.2`. */
  version: string;
  /** CA that signed the serving certificate and every client certificate below. */
  caPem: string;
  caFile: string;
  /** Admin client certificate: CN=agate-admin, O=system:masters. */
  clientCertFile: string;
  clientKeyFile: string;
  /** kubeconfig using the admin client certificate. */
  adminKubeconfigPath: string;
  /** Bearer token of user `agate-token-admin` in group system:masters. */
  adminToken: string;
  /** Bearer token of user `agate-nobody`: authenticated, but no RBAC grants (403 on most calls). */
  userToken: string;
  /** A second, unrelated CA with its own 127.0.0.1 certificate: does NOT verify this server. */
  other: KubeTlsPair;
  /** Same as `other.caFile`. */
  otherCaFile: string;
  kubectlPath: string;
  /** Runs the cached kubectl (admin kubeconfig unless `kubeconfig` is given). Never throws on exit code. */
  kubectl(args: string[], opts?: KubectlOptions): Promise<RunResult>;
  /** Writes a kubeconfig (e.g. pointing kubectl at a proxy) and returns its path. */
  writeKubeconfig(opts?: KubeconfigOptions): Promise<string>;
  dir: string;
  /** Tail of kube-apiserver's and etcd's output. */
  log(): string;
  /** Stops both processes and removes `dir`. Safe to call more than once. */
  stop(): Promise<void>;
  /** The API server's audit events so far (empty unless started with `auditLog`). */
  auditEvents(): Promise<KubeAuditEvent[]>;
}

/** The fields of an audit.k8s.io/v1 Event the tests read. */
export interface KubeAuditEvent {
  stage: string;
  verb: string;
  requestURI: string;
  user: { username: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
}

export interface StartKubeApiServerOptions {
  /** Deadline for PKI, etcd and /readyz once binaries are cached. Default 180 000 ms (a loaded CI machine). */
  readyTimeoutMs?: number;
  /**
   * Turns on the API server's own audit log (every request at Metadata level, one JSON event per
   * line): the independent record of what the API server did, to compare Agate's record against.
   */
  auditLog?: boolean;
  /**
   * Turns on front-proxy (request header) authentication, trusting the administrator's client
   * certificate (the one Agate reaches the API server with) as a front proxy: `X-Remote-User` and
   * its siblings on its requests then name who the API server acts as.
   */
  requestHeaderAuth?: boolean;
}

const HOST = '127.0.0.1';

/** Builds the binaries when missing (10-25 min cold; progress goes to stderr), returns the bin dir. */
async function installKube(): Promise<string> {
  return runInstaller('install-kube.sh', { timeoutMs: 45 * 60_000 });
}

export async function startKubeApiServer(opts: StartKubeApiServerOptions = {}): Promise<KubeApiServer> {
  const bin = await installKube();
  const version = (await readFile(join(bin, '.complete'), 'utf8')).split(' ')[0]!.trim();
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 180_000);
  const dir = await mkdtemp(join(tmpdir(), 'agate-kube-'));
  const children: ChildProcess[] = [];
  let output = '';
  const capture = (name: string, c: ChildProcess) => {
    const add = (d: string) => (output = (output + d.replace(/^(?=.)/gm, `[${name}] `)).slice(-64_000));
    c.stdout?.setEncoding('utf8').on('data', add);
    c.stderr?.setEncoding('utf8').on('data', add);
  };
  const killAll = () => children.forEach((c) => c.exitCode === null && c.signalCode === null && c.kill('SIGKILL'));
  process.once('exit', killAll);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // apiserver first, so it does not log etcd connection errors on the way down.
    for (const c of [...children].reverse()) await terminate(c);
    process.removeListener('exit', killAll);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const pki = await makePki(dir, deadline);
    const adminToken = randomBytes(24).toString('hex');
    const userToken = randomBytes(24).toString('hex');
    const tokenFile = join(dir, 'tokens.csv');
    await writeFile(tokenFile, `${adminToken},agate-token-admin,uid-agate-token-admin,"system:masters"\n${userToken},agate-nobody,uid-agate-nobody\n`, { mode: 0o600 });

    const etcdPort = await startEtcd(bin, dir, children, capture, deadline);
    const audit = opts.auditLog === true ? await auditFiles(dir) : undefined;
    const frontProxy = opts.requestHeaderAuth === true ? requestHeaderFlags(pki.caFile) : [];
    const port = await startApiServer(bin, dir, pki, tokenFile, `http://${HOST}:${etcdPort}`, children, capture, () => output, deadline, audit, frontProxy);
    const url = `https://${HOST}:${port}`;
    const caPem = await readFile(pki.caFile, 'utf8');
    const kubectlPath = join(bin, 'kubectl');
    const cacheDir = join(dir, 'kubectl-cache');
    let nthConfig = 0;
    const writeKubeconfig = async (k: KubeconfigOptions = {}): Promise<string> => {
      const path = k.path ?? join(dir, `kubeconfig-${++nthConfig}`);
      await writeFile(path, kubeconfig({ server: k.server ?? url, caFile: k.caFile ?? pki.caFile, token: k.token, certFile: k.clientCertFile ?? pki.adminCert, keyFile: k.clientKeyFile ?? pki.adminKey }), { mode: 0o600 });
      return path;
    };
    const adminKubeconfigPath = await writeKubeconfig({ path: join(dir, 'admin.kubeconfig') });
    return {
      url,
      host: HOST,
      port,
      version,
      caPem,
      caFile: pki.caFile,
      clientCertFile: pki.adminCert,
      clientKeyFile: pki.adminKey,
      adminKubeconfigPath,
      adminToken,
      userToken,
      other: pki.other,
      otherCaFile: pki.other.caFile,
      kubectlPath,
      kubectl: (args, o = {}) =>
        run(kubectlPath, args, {
          input: o.input,
          timeoutMs: o.timeoutMs ?? 30_000,
          // KUBECACHEDIR keeps discovery caches out of ~/.kube.
          env: { ...process.env, KUBECONFIG: o.kubeconfig ?? adminKubeconfigPath, KUBECACHEDIR: cacheDir },
        }),
      writeKubeconfig,
      dir,
      log: () => output,
      stop,
      auditEvents: async () => {
        if (audit === undefined || !existsSync(audit.log)) return [];
        const text = await readFile(audit.log, 'utf8');
        return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as KubeAuditEvent);
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function kubeconfig(k: { server: string; caFile: string; token?: string; certFile: string; keyFile: string }): string {
  const user = k.token !== undefined ? [`    token: ${JSON.stringify(k.token)}`] : [`    client-certificate: ${JSON.stringify(k.certFile)}`, `    client-key: ${JSON.stringify(k.keyFile)}`];
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: agate-test',
    '  cluster:',
    `    server: ${JSON.stringify(k.server)}`,
    `    certificate-authority: ${JSON.stringify(k.caFile)}`,
    'users:',
    '- name: agate-test',
    '  user:',
    ...user,
    'contexts:',
    '- name: agate-test',
    '  context:',
    '    cluster: agate-test',
    '    user: agate-test',
    'current-context: agate-test',
    '',
  ].join('\n');
}

interface Pki {
  caFile: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  saPublic: string;
  saPrivate: string;
  other: KubeTlsPair;
}

/** CA, serving cert, admin client cert, service-account key pair and an unrelated second CA. */
async function makePki(dir: string, deadline: number): Promise<Pki> {
  const pki = join(dir, 'pki');
  await mkdir(pki, { mode: 0o700 });
  const f = (name: string) => join(pki, name);
  const ssl = async (...args: string[]) => {
    const r = await run('openssl', args, { timeoutMs: Math.max(5000, deadline - Date.now()) });
    if (r.code !== 0) throw new Error(describeFailure('openssl', args, r));
  };
  const ecKey = (out: string) => ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', out);
  const ca = async (name: string, cn: string) => {
    await ecKey(f(`${name}.key`));
    await ssl('req', '-x509', '-new', '-key', f(`${name}.key`), '-subj', `/CN=${cn}`, '-days', '3', '-out', f(`${name}.crt`),
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  };
  // One leaf signed by `caName`; `ext` is an openssl extensions section body.
  const leaf = async (name: string, caName: string, subj: string, ext: string) => {
    await ecKey(f(`${name}.key`));
    await ssl('req', '-new', '-key', f(`${name}.key`), '-subj', subj, '-out', f(`${name}.csr`));
    await writeFile(f(`${name}.ext`), ext);
    await ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${caName}.crt`), '-CAkey', f(`${caName}.key`), '-CAcreateserial',
      '-days', '3', '-extfile', f(`${name}.ext`), '-out', f(`${name}.crt`));
  };
  const serverExt = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1\n';
  const clientExt = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n';
  await ca('ca', 'agate-test-kube-ca');
  await leaf('apiserver', 'ca', '/CN=kube-apiserver', serverExt);
  await leaf('admin', 'ca', '/O=system:masters/CN=agate-admin', clientExt);
  await ca('other-ca', 'agate-test-other-ca');
  await leaf('other', 'other-ca', '/O=system:masters/CN=agate-other', serverExt);
  await ssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', f('sa.key'));
  await ssl('pkey', '-in', f('sa.key'), '-pubout', '-out', f('sa.pub'));
  return {
    caFile: f('ca.crt'),
    servingCert: f('apiserver.crt'),
    servingKey: f('apiserver.key'),
    adminCert: f('admin.crt'),
    adminKey: f('admin.key'),
    saPublic: f('sa.pub'),
    saPrivate: f('sa.key'),
    other: { caFile: f('other-ca.crt'), caPem: await readFile(f('other-ca.crt'), 'utf8'), certFile: f('other.crt'), keyFile: f('other.key') },
  };
}

const PORT_ATTEMPTS = 3;

type Capture = (name: string, c: ChildProcess) => void;

/** Starts etcd on free loopback ports; retries when a port was taken between pick and bind. */
async function startEtcd(bin: string, dir: string, children: ChildProcess[], capture: Capture, deadline: number): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const [clientPort, peerPort] = [await findFreePort(), await findFreePort()];
    const client = `http://${HOST}:${clientPort}`;
    const peer = `http://${HOST}:${peerPort}`;
    const dataDir = join(dir, `etcd-${attempt}`);
    const child = spawn(join(bin, 'etcd'), [
      '--name=agate', `--data-dir=${dataDir}`,
      `--listen-client-urls=${client}`, `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`, `--initial-cluster=agate=${peer}`,
      '--initial-cluster-state=new', '--log-level=warn',
      // Throw-away data: fsync buys nothing and costs seconds on a loaded machine.
      '--unsafe-no-fsync',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-16_000)));
    children.push(child);
    capture('etcd', child);
    try {
      await waitUntil(`etcd on ${client}`, child, () => out, deadline, async () => {
        const body = await httpGet(`${client}/health`);
        return body !== undefined && /"health":\s*"true"/.test(body);
      });
      return clientPort;
    } catch (err) {
      await terminate(child);
      children.splice(children.indexOf(child), 1);
      if (attempt < PORT_ATTEMPTS && /address already in use/i.test(out) && Date.now() < deadline) continue;
      throw err;
    }
  }
}

/** An audit policy recording every request at Metadata level, and where the log goes. */
async function auditFiles(dir: string): Promise<{ policy: string; log: string }> {
  const policy = join(dir, 'audit-policy.yaml');
  await writeFile(policy, 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n');
  return { policy, log: join(dir, 'audit.log') };
}

/** kube-apiserver flags for front-proxy authentication with the usual (kubeadm) header names. */
function requestHeaderFlags(caFile: string): string[] {
  return [
    // Its CA also signs ordinary client certificates, so the API server insists on named proxies.
    `--requestheader-client-ca-file=${caFile}`, '--requestheader-allowed-names=agate-admin', '--requestheader-username-headers=X-Remote-User', '--requestheader-uid-headers=X-Remote-Uid',
    '--requestheader-group-headers=X-Remote-Group', '--requestheader-extra-headers-prefix=X-Remote-Extra-',
  ];
}

async function startApiServer(
  bin: string, dir: string, pki: Pki, tokenFile: string, etcd: string,
  children: ChildProcess[], capture: Capture, log: () => string, deadline: number,
  audit: { policy: string; log: string } | undefined, extraFlags: readonly string[],
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const port = await findFreePort();
    const child = spawn(join(bin, 'kube-apiserver'), [
      `--bind-address=${HOST}`, `--advertise-address=${HOST}`, `--secure-port=${port}`,
      `--etcd-servers=${etcd}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${pki.servingCert}`, `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caFile}`,
      `--token-auth-file=${tokenFile}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${pki.saPublic}`, `--service-account-signing-key-file=${pki.saPrivate}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      // No controller-manager creates the `default` service account, so pods could never be
      // admitted with the ServiceAccount plugin on.
      '--disable-admission-plugins=ServiceAccount',
      '--anonymous-auth=false',
      '--profiling=false',
      // A stub kubelet (stub-kubelet.ts) serves the second CA's certificate; no real kubelet exists.
      `--kubelet-certificate-authority=${pki.other.caFile}`,
      '--endpoint-reconciler-type=none',
      '--v=1',
      // Written as each request is handled (the default batch backend would lag behind).
      ...(audit === undefined ? [] : [`--audit-policy-file=${audit.policy}`, `--audit-log-path=${audit.log}`, '--audit-log-mode=blocking', '--audit-log-format=json']),
      ...extraFlags,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-32_000)));
    children.push(child);
    capture('kube-apiserver', child);
    try {
      await waitUntil(`kube-apiserver on ${HOST}:${port}`, child, log, deadline, async () => {
        const body = await httpGet(`https://${HOST}:${port}/readyz`, { ca: await readFile(pki.caFile), cert: await readFile(pki.adminCert), key: await readFile(pki.adminKey) });
        return body === 'ok';
      });
      return port;
    } catch (err) {
      await terminate(child);
      children.splice(children.indexOf(child), 1);
      if (attempt < PORT_ATTEMPTS && /address already in use/i.test(out) && Date.now() < deadline) continue;
      throw err;
    }
  }
}

async function waitUntil(what: string, child: ChildProcess, log: () => string, deadline: number, ready: () => Promise<boolean>): Promise<void> {
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited with ${child.exitCode ?? child.signalCode}:\n${log().slice(-4000)}`);
    if (await ready()) return;
    if (Date.now() > deadline) throw new Error(`${what} was not ready in time:\n${log().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Body of a 200 answer, or undefined for anything else (refused, non-200, timeout). */
function httpGet(url: string, tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {}): Promise<string | undefined> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? request : httpRequest;
    const req = get(url, { ...tls, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 ? body : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

async function terminate(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
