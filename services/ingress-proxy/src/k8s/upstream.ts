import { Agent, type RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError } from '../../../../core/src/errors.js';

/** The TLS material Agate presents to (and checks) the API server; never logged. */
export interface UpstreamTls {
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
  servername?: string;
}

/**
 * One Kubernetes API server as a kubeconfig describes it, with Agate's credential: client
 * certificate, bearer token, basic auth or an exec/auth-provider plugin, applied through
 * `@kubernetes/client-node`. The server's certificate is always verified.
 */
export class KubeUpstream {
  readonly agent: Agent;

  private constructor(
    readonly server: URL,
    readonly tls: UpstreamTls,
    private readonly config: KubeConfig,
    /** Headers of a static credential (token, basic auth, impersonation from the kubeconfig). */
    private readonly staticHeaders: Record<string, string> | undefined,
  ) {
    // One pool for every client: a TLS handshake per request would dominate latency.
    this.agent = new Agent({ ...tls, rejectUnauthorized: true, keepAlive: true, maxSockets: 64 });
  }

  /** Loads the kubeconfig (and context); a missing file, context or CA-less insecure cluster fails start. */
  static async load(path: string, context: string | undefined, where: string): Promise<KubeUpstream> {
    const kc = new KubeConfig();
    try {
      kc.loadFromFile(path);
    } catch (cause) {
      throw new ConfigError(`${where}.kubeconfig: cannot load ${path}: ${(cause as Error).message}`, { cause });
    }
    if (context !== undefined) {
      if (kc.getContextObject(context) === null) throw new ConfigError(`${where}.context: no context "${context}" in ${path}`);
      kc.setCurrentContext(context);
    }
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new ConfigError(`${where}.kubeconfig: ${path} names no cluster for context "${kc.getCurrentContext()}"`);
    if (cluster.skipTLSVerify) throw new ConfigError(`${where}.kubeconfig: cluster "${cluster.name}" sets insecure-skip-tls-verify; Agate always verifies the API server's certificate`);
    let server: URL;
    try {
      server = new URL(cluster.server);
    } catch (cause) {
      throw new ConfigError(`${where}.kubeconfig: cluster "${cluster.name}" has no valid server URL`, { cause });
    }
    if (server.protocol !== 'https:') throw new ConfigError(`${where}.kubeconfig: cluster "${cluster.name}" server must be https:// (got ${server.protocol})`);
    const opts = await KubeUpstream.#apply(kc, where);
    const tls: UpstreamTls = {};
    if (opts.ca !== undefined) tls.ca = opts.ca as Buffer;
    if (opts.cert !== undefined) tls.cert = opts.cert as Buffer;
    if (opts.key !== undefined) tls.key = opts.key as Buffer;
    if (opts.servername !== undefined) tls.servername = opts.servername;
    const user = kc.getCurrentUser();
    // Plugins mint short-lived tokens: those headers are asked for per request (the plugin caches).
    const dynamic = user?.exec !== undefined || user?.authProvider !== undefined;
    return new KubeUpstream(server, tls, kc, dynamic ? undefined : headersOf(opts));
  }

  /** Headers that carry Agate's credential for the next request. */
  async headers(): Promise<Record<string, string>> {
    if (this.staticHeaders !== undefined) return this.staticHeaders;
    return headersOf(await KubeUpstream.#apply(this.config, 'kubeconfig'));
  }

  close(): void {
    this.agent.destroy();
  }

  static async #apply(kc: KubeConfig, where: string): Promise<RequestOptions> {
    const opts: RequestOptions = {};
    try {
      await kc.applyToHTTPSOptions(opts);
    } catch (cause) {
      throw new ConfigError(`${where}: cannot apply the kubeconfig credential: ${(cause as Error).message}`, { cause });
    }
    (opts.agent as Agent | undefined)?.destroy(); // the library makes a fresh agent each call; Agate keeps its own
    return opts;
  }
}

function headersOf(opts: RequestOptions): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) if (typeof v === 'string') out[k] = v;
  if (opts.auth != null) out.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
  return out;
}
