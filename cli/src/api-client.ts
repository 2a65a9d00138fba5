import type { AgateConfig } from '../../core/src/config.js';
import { mintDevToken } from '../../core/src/identity/dev-issuer.js';

/** Calls the query API of a running Agate, as the CLI's read commands do. */
export class ApiClient {
  constructor(private readonly baseUrl: string, private readonly token: string) {}

  static async fromConfig(config: AgateConfig, explicitToken: string | undefined, url: string | undefined): Promise<ApiClient> {
    let token = explicitToken ?? process.env.AGATE_TOKEN;
    if (token === undefined && config.identity.dev_issuer.enabled) {
      // Local trials only: the dev issuer is on, so the CLI can mint its own short token.
      token = await mintDevToken(config.data_dir, { subject: 'agate-cli', audience: config.identity.dev_issuer.audience, ttlSeconds: 300 });
    }
    if (token === undefined) throw new Error('the query API needs a token: pass --token or set AGATE_TOKEN');
    return new ApiClient(url ?? `http://${config.query.listen}`, token);
  }

  async get<T>(path: string): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, { headers: { authorization: `Bearer ${this.token}` }, signal: AbortSignal.timeout(30_000) });
    } catch (err) {
      throw new Error(`cannot reach the Agate query API at ${this.baseUrl} (is \`agate start\` running?): ${(err as Error).message}`);
    }
    const body = (await res.json()) as T & { error?: { code: string; message: string } };
    if (!res.ok) throw new Error(`query API answered ${res.status}: ${body.error?.code ?? ''} ${body.error?.message ?? ''}`.trim());
    return body;
  }
}
