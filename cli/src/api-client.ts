import type { AgateConfig } from '../../core/src/config.js';
import { mintDevToken } from '../../core/src/identity/dev-issuer.js';
import { UsageError } from './usage.js';

/** Calls the query API of a running Agate, as the CLI's read commands do. */
export class ApiClient {
  constructor(private readonly baseUrl: string, private readonly token: string) {}

  static async fromConfig(config: AgateConfig, explicitToken: string | undefined, url: string | undefined, role: 'admin' | 'approver' = 'admin'): Promise<ApiClient> {
    let token = explicitToken ?? process.env.AGATE_TOKEN;
    if (token === undefined && config.identity.dev_issuer.enabled) {
      // Local trials only: the dev issuer is on, so the CLI can mint its own short token.
      // It asks for the admin role so every read command works whatever query.roles says
      // (the approver role for approve/deny, which admins do not hold).
      const roles = config.query.roles;
      const globs = roles[role];
      const claims = globs.length > 0 && !globs[0]!.includes('*') ? { [roles.claim]: globs[0] } : {};
      token = await mintDevToken(config.data_dir, { subject: 'agate-cli', audience: config.identity.dev_issuer.audience, ttlSeconds: 300, claims });
    }
    if (token === undefined || token === '') throw new UsageError('the query API needs a token: pass --token or set AGATE_TOKEN');
    return new ApiClient(url ?? `${config.query.tls === undefined ? 'http' : 'https'}://${config.query.listen}`, token);
  }

  async get<T>(path: string): Promise<T> {
    return JSON.parse(await this.request('GET', path)) as T;
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    return JSON.parse(await this.request('POST', path, JSON.stringify(body))) as T;
  }

  /** The raw body of a successful answer; an error answer becomes an Error naming its code. */
  async request(method: 'GET' | 'POST', path: string, body?: string): Promise<string> {
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body,
        signal: AbortSignal.timeout(120_000),
      });
    } catch (err) {
      throw new Error(`cannot reach the Agate query API at ${this.baseUrl} (is \`agate start\` running?): ${(err as Error).message}`);
    }
    const text = await res.text();
    if (!res.ok) {
      let error: { code?: string; message?: string } = {};
      try {
        error = (JSON.parse(text) as { error?: typeof error }).error ?? {};
      } catch {
        // not JSON: report the status alone
      }
      throw new Error(`query API answered ${res.status}: ${error.code ?? ''} ${error.message ?? ''}`.trim());
    }
    return text;
  }
}
