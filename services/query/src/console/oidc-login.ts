import * as oidc from 'openid-client';
import { isLoopbackHost, readSecret, type ConsoleConfig } from '../../../../core/src/config.js';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import type { Identity } from '../../../../schemas/src/events.js';

/** What the browser must bring back to finish one sign-in: kept server-side, keyed by a cookie. */
export interface LoginFlow {
  state: string;
  nonce: string;
  codeVerifier: string;
}

/**
 * Human sign-in by OIDC authorization code with PKCE (S256), state and nonce, through
 * `openid-client`. The provider's metadata is discovered on first use and kept; a failed
 * discovery is tried again on the next sign-in, so the console starts while the provider is down.
 */
export class OidcLogin {
  #config: Promise<oidc.Configuration> | undefined;

  readonly #cfg: NonNullable<ConsoleConfig['oidc']>;

  constructor(cfg: NonNullable<ConsoleConfig['oidc']>) {
    this.#cfg = cfg;
  }

  /** A fresh flow and the provider URL to send the browser to. */
  async begin(): Promise<{ url: URL; flow: LoginFlow }> {
    const config = await this.#discover();
    const flow: LoginFlow = { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier: oidc.randomPKCECodeVerifier() };
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.#cfg.redirect_url, scope: this.#cfg.scopes.join(' '), response_type: 'code',
      code_challenge: await oidc.calculatePKCECodeChallenge(flow.codeVerifier), code_challenge_method: 'S256',
      state: flow.state, nonce: flow.nonce,
    });
    return { url, flow };
  }

  /**
   * Redeems the code the provider sent back to `callbackUrl` (checked against the flow's state,
   * PKCE verifier and nonce; the ID token's signature, issuer, audience and expiry are checked by
   * openid-client) and returns the signed-in person as an Identity, claims as the query API sees them.
   */
  async finish(callbackUrl: URL, flow: LoginFlow): Promise<Identity> {
    const config = await this.#discover();
    // The browser reached us at our own redirect URL; rebuild it from the configured one so a
    // Host header cannot change the redirect_uri sent with the code.
    const current = new URL(this.#cfg.redirect_url);
    current.search = callbackUrl.search;
    let claims: oidc.IDToken | undefined;
    try {
      const tokens = await oidc.authorizationCodeGrant(config, current, { pkceCodeVerifier: flow.codeVerifier, expectedState: flow.state, expectedNonce: flow.nonce, idTokenExpected: true });
      claims = tokens.claims();
    } catch (cause) {
      throw new AgateError(ErrorCode.CONSOLE_SIGN_IN_FAILED, `the identity provider's answer was refused: ${(cause as Error).message}`, { cause });
    }
    if (claims === undefined || typeof claims.sub !== 'string') throw new AgateError(ErrorCode.CONSOLE_SIGN_IN_FAILED, 'the identity provider returned no ID token subject');
    const flat: Record<string, string> = {};
    // Non-string claims are JSON-encoded, as core/src/identity/oidc.ts does for agents' tokens.
    for (const [k, v] of Object.entries(claims)) flat[k] = typeof v === 'string' ? v : JSON.stringify(v);
    return { issuer: String(claims.iss), subject: claims.sub, claims: flat };
  }

  #discover(): Promise<oidc.Configuration> {
    if (this.#config === undefined) {
      const issuer = new URL(this.#cfg.issuer);
      const secret = this.#cfg.client_secret === undefined ? undefined : readSecret(this.#cfg.client_secret, 'console.oidc.client_secret');
      // config.ts only lets plain http through for a loopback issuer.
      const execute = issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname) ? [oidc.allowInsecureRequests] : [];
      this.#config = oidc.discovery(issuer, this.#cfg.client_id, secret, secret === undefined ? oidc.None() : oidc.ClientSecretBasic(secret), { execute });
      this.#config.catch(() => (this.#config = undefined));
    }
    return this.#config;
  }
}
