import { readFileSync } from 'node:fs';
import { Agent, type RequestOptions } from 'node:https';
import { dirname, isAbsolute, resolve } from 'node:path';
// Deep imports on purpose: the package's entry point (its `KubeConfig` class) loads undici 8,
// which needs Node >= 22.19 and throws at import on Node 20. These two modules do not: the
// kubeconfig parsers and the exec credential plugin runner.
import { newClusters, newContexts, newUsers, type Cluster, type User } from '@kubernetes/client-node/dist/config_types.js';
import { ExecAuth } from '@kubernetes/client-node/dist/exec_auth.js';
import { parse } from 'yaml';
import { ConfigError } from '../../../../core/src/errors.js';

/** The TLS material Agate presents to (and checks) the API server; never logged. */
interface UpstreamTls {
  ca?: Buffer;
  cert?: Buffer | string;
  key?: Buffer | string;
  servername?: string;
}

/**
 * One Kubernetes API server as a kubeconfig describes it, with Agate's credential: client
 * certificate, bearer token (or token file), basic auth, or an exec credential plugin (run
 * through `@kubernetes/client-node`'s ExecAuth, which caches until the credential expires).
 * The server's certificate is always verified; `insecure-skip-tls-verify` fails start.
 */
export class KubeUpstream {
  readonly agent: Agent;

  private constructor(
    readonly server: URL,
    readonly tls: UpstreamTls,
    private readonly user: User,
    private readonly exec: ExecAuth | undefined,
    private readonly staticHeaders: Record<string, string>,
  ) {
    // One pool for every client: a TLS handshake per request would dominate latency. No cap on
    // sockets in use: each watch holds one for its lifetime, and a cap would stall every other
    // request behind long watches (client connections are capped at the listener instead).
    this.agent = new UpstreamAgent({ ...tls, rejectUnauthorized: true, keepAlive: true, maxFreeSockets: 64 });
  }

  /** Loads the kubeconfig (and context); a missing file, context, credential or CA check fails start. */
  static async load(path: string, context: string | undefined, where: string): Promise<KubeUpstream> {
    let doc: Record<string, unknown>;
    try {
      doc = (parse(readFileSync(path, 'utf8')) ?? {}) as Record<string, unknown>;
    } catch (cause) {
      throw new ConfigError(`${where}.kubeconfig: cannot load ${path}: ${(cause as Error).message}`, { cause });
    }
    const base = dirname(resolve(path));
    const file = (p: string | undefined) => (p === undefined || p === null || p === '' ? undefined : isAbsolute(p) ? p : resolve(base, p));
    let clusters: Cluster[];
    let users: User[];
    let contexts: ReturnType<typeof newContexts>;
    try {
      clusters = newClusters(doc.clusters);
      users = newUsers(doc.users);
      contexts = newContexts(doc.contexts);
    } catch (cause) {
      throw new ConfigError(`${where}.kubeconfig: ${path} is not a valid kubeconfig: ${(cause as Error).message}`, { cause });
    }
    const name = context ?? (doc['current-context'] as string | undefined);
    const ctx = contexts.find((c) => c.name === name);
    if (ctx === undefined) throw new ConfigError(`${where}.${context === undefined ? 'kubeconfig' : 'context'}: no context "${name ?? ''}" in ${path}`);
    const cluster = clusters.find((c) => c.name === ctx.cluster);
    const user = users.find((u) => u.name === ctx.user);
    if (cluster === undefined) throw new ConfigError(`${where}.kubeconfig: context "${ctx.name}" names cluster "${ctx.cluster}", which ${path} does not define`);
    if (user === undefined) throw new ConfigError(`${where}.kubeconfig: context "${ctx.name}" names user "${ctx.user}", which ${path} does not define`);
    if (cluster.skipTLSVerify) throw new ConfigError(`${where}.kubeconfig: cluster "${cluster.name}" sets insecure-skip-tls-verify; Agate always verifies the API server's certificate`);
    if (cluster.proxyUrl) throw new ConfigError(`${where}.kubeconfig: cluster "${cluster.name}" sets proxy-url, which Agate does not support`);
    let server: URL;
    try {
      server = new URL(cluster.server);
    } catch (cause) {
      throw new ConfigError(`${where}.kubeconfig: cluster "${cluster.name}" has no valid server URL`, { cause });
    }
    if (server.protocol !== 'https:') throw new ConfigError(`${where}.kubeconfig: cluster "${cluster.name}" server must be https:// (got ${server.protocol})`);
    const read = (data: string | undefined, p: string | undefined, what: string): Buffer | undefined => {
      if (data) return Buffer.from(data, 'base64');
      const abs = file(p);
      if (abs === undefined) return undefined;
      try {
        return readFileSync(abs);
      } catch (cause) {
        throw new ConfigError(`${where}.kubeconfig: cannot read the ${what} ${abs}`, { cause });
      }
    };
    const tls: UpstreamTls = {};
    const ca = read(cluster.caData, cluster.caFile, 'certificate authority');
    if (ca !== undefined) tls.ca = ca;
    const cert = read(user.certData, user.certFile, 'client certificate');
    const key = read(user.keyData, user.keyFile, 'client key');
    if (cert !== undefined) tls.cert = cert;
    if (key !== undefined) tls.key = key;
    if (cluster.tlsServerName) tls.servername = cluster.tlsServerName;
    const exec = new ExecAuth();
    const usesExec = exec.isAuthProvider(user);
    if (user.authProvider && !usesExec) {
      throw new ConfigError(`${where}.kubeconfig: user "${user.name}" uses auth-provider "${String(user.authProvider.name)}", which Agate does not support (use a token, a client certificate or an exec plugin)`);
    }
    const headers: Record<string, string> = {};
    if (user.token) headers.Authorization = `Bearer ${user.token}`;
    else if (user.username) headers.Authorization = `Basic ${Buffer.from(`${user.username}:${user.password ?? ''}`).toString('base64')}`;
    if (user.impersonateUser) headers['Impersonate-User'] = user.impersonateUser;
    if (!usesExec && headers.Authorization === undefined && (cert === undefined || key === undefined)) {
      throw new ConfigError(`${where}.kubeconfig: user "${user.name}" has no credential Agate can use (client certificate and key, token, username/password or exec plugin)`);
    }
    const upstream = new KubeUpstream(server, tls, user, usesExec ? exec : undefined, headers);
    if (usesExec) await upstream.headers(); // a broken plugin fails start, not the first request
    return upstream;
  }

  /** Headers that carry Agate's credential for the next request. */
  async headers(): Promise<Record<string, string>> {
    if (this.exec === undefined) return this.staticHeaders;
    const opts: RequestOptions = {};
    try {
      await this.exec.applyAuthentication(this.user, opts);
    } catch (cause) {
      throw new ConfigError(`the exec credential plugin of kubeconfig user "${this.user.name}" failed: ${(cause as Error).message}`, { cause });
    }
    const out = { ...this.staticHeaders };
    const auth = (opts.headers as Record<string, string> | undefined)?.Authorization;
    if (auth !== undefined) out.Authorization = auth;
    return out;
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * The pool of one API server. Node keys an agent's pools by a name it builds for every request
 * from host, port and the TLS options, the CA, certificate and key PEMs among them (some KB of
 * text converted and hashed per request, measured ~20 µs of the event loop under load). Every
 * request through this agent goes to the same server with the same TLS options, so one name is
 * right for all of them.
 */
class UpstreamAgent extends Agent {
  override getName(): string {
    return 'upstream';
  }
}
