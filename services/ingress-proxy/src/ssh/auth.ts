import { randomUUID } from 'node:crypto';
import type { AuthContext, AuthenticationType, Connection } from 'ssh2';
import { AuthenticationError, ErrorCode } from '../../../../core/src/errors.js';
import { TokenVerifier } from '../../../../core/src/identity/oidc.js';
import { abandonedMessage, type Abandoned, type LoginGuard, type PendingLogin } from '../../../../core/src/logins/pending.js';
import type { Logger } from '../../../../core/src/log.js';
import { nowMicros, type Identity } from '../../../../schemas/src/events.js';
import type { SessionEvents } from '../session-events.js';
import type { AuthorizedKeys } from './authorized-keys.js';
import { fingerprint } from './host-key.js';
import type { SshUpstreamTarget } from './upstream.js';

/** Failed logins (a bad token, a bad signature, an unknown target) before the connection is closed. */
export const MAX_AUTH_FAILURES = 3;
const AUTH_METHODS = ['password', 'keyboard-interactive'] as const;
/** OpenSSH reads a password or prompt answer into a 1024-byte buffer: longer input is cut here. */
export const OPENSSH_PASSWORD_MAX = 1023;
/** Continuation prompts for one keyboard-interactive login (8 KiB of token). */
const MAX_TOKEN_PARTS = 8;

/** A login that verified: who, and the target it named as its user name. */
export interface Login {
  identity: Identity;
  target: SshUpstreamTarget;
  /** The user name the client logged in with (the target's name as the client spelt it). */
  username: string;
}

interface SshAuthDeps {
  sessionId: string;
  proxyId: string;
  clientAddress: string;
  /** The address failed logins are counted against (the throttle's key). */
  sourceAddress: string;
  verifier: TokenVerifier;
  resolveTarget: (name: string) => SshUpstreamTarget | undefined;
  /** The listener's connections still logging in (their deadline), and the failed-login throttle. */
  logins: LoginGuard;
  authorizedKeys?: AuthorizedKeys;
  events: SessionEvents;
  log: Logger;
  /** Records the session's start; false when it could not be recorded (the login is then refused). */
  opened: (login: Login) => Promise<boolean>;
  /** Ends the connection from the proxy's side with this reason. */
  terminate: (reason: string) => void;
}

/**
 * The login of one SSH connection. The client logs in with its OIDC token as the password (or
 * as keyboard-interactive answers, in parts when it is longer than the ssh client sends at
 * once), or with a public key registered to an identity, naming the target as its user name.
 * Each refusal is recorded; the third that counts closes the connection. Until ssh2 reports the
 * login complete the connection holds a pending-login slot with the listener's deadline.
 */
export class SshAuth {
  readonly #conn: Connection;
  readonly #deps: SshAuthDeps;
  #failures = 0;
  #username = '';

  constructor(conn: Connection, login: PendingLogin, deps: SshAuthDeps) {
    this.#conn = conn;
    this.#deps = deps;
    conn.on('authentication', (ctx) => void this.#onAuthentication(ctx));
    login.onAbandon = (why) => void this.#abandon(why);
    conn.on('ready', () => login.done());
  }

  /** The user name of the latest login attempt ('' before any). */
  get username(): string {
    return this.#username;
  }

  async #onAuthentication(ctx: AuthContext): Promise<void> {
    if (ctx.method === 'password') return this.#tokenLogin(ctx, ctx.password);
    if (ctx.method === 'keyboard-interactive') return this.#promptToken(ctx, '', 1);
    if (ctx.method === 'publickey' && this.#keys !== undefined) return this.#keyLogin(ctx, this.#keys);
    ctx.reject(this.#methods());
  }

  /** The login methods offered: tokens always, public keys when some are registered. */
  #methods(): AuthenticationType[] {
    return this.#keys === undefined ? [...AUTH_METHODS] : [...AUTH_METHODS, 'publickey'];
  }

  get #keys(): AuthorizedKeys | undefined {
    const keys = this.#deps.authorizedKeys;
    return keys === undefined || keys.size === 0 ? undefined : keys;
  }

  /**
   * publickey: a registered key logs in as the identity the config gives it. The client first
   * asks whether a key would do (no signature), then proves it holds the private key.
   */
  async #keyLogin(ctx: AuthContext & { method: 'publickey' }, keys: AuthorizedKeys): Promise<void> {
    this.#username = ctx.username;
    const identity = keys.identityOf(ctx.key.algo, ctx.key.data);
    if (identity === undefined) {
      // Clients offer every key they hold in turn: a refusal is recorded but not counted as a failure.
      return this.#refuse(ctx, '', ErrorCode.AUTH_KEY_UNKNOWN, `the public key ${fingerprint(ctx.key.data)} is not registered to any identity`, false);
    }
    if (ctx.signature === undefined || ctx.blob === undefined) return ctx.accept();
    if (!keys.verify(ctx.key.algo, ctx.key.data, ctx.blob, ctx.signature, ctx.hashAlgo)) {
      return this.#refuse(ctx, '', ErrorCode.AUTH_KEY_SIGNATURE_INVALID, `the signature made with ${fingerprint(ctx.key.data)} does not verify`);
    }
    await this.#open(ctx, identity, '');
  }

  /**
   * keyboard-interactive: the token, in as many answers as the client needs. OpenSSH sends at
   * most 1023 characters per answer, so an answer of that length is followed by a prompt for
   * the rest (an askpass program can answer each part; see the README).
   */
  #promptToken(ctx: AuthContext & { method: 'keyboard-interactive' }, sofar: string, part: number): void {
    const prompt = part === 1 ? 'OIDC token (password): ' : `OIDC token, continued (part ${part}): `;
    const instructions = part === 1 ? 'Log in with your OIDC token' : `The answer filled the ssh client's ${OPENSSH_PASSWORD_MAX}-character limit; type the rest of the token`;
    ctx.prompt([{ prompt, echo: false }], 'Agate', instructions, (answers) => {
      const answer = Array.isArray(answers) ? (answers[0] ?? '') : '';
      if (answer.length >= OPENSSH_PASSWORD_MAX && part < MAX_TOKEN_PARTS) return this.#promptToken(ctx, sofar + answer, part + 1);
      void this.#tokenLogin(ctx, sofar + answer);
    });
  }

  async #tokenLogin(ctx: AuthContext, token: string): Promise<void> {
    this.#username = ctx.username;
    let identity: Identity;
    try {
      identity = await this.#deps.verifier.verify(token);
    } catch (err) {
      const e = err instanceof AuthenticationError ? err : new AuthenticationError(ErrorCode.AUTH_TOKEN_MALFORMED, 'the token could not be verified', { cause: err });
      // A password of exactly the client's limit was almost certainly cut short.
      const cut = ctx.method === 'password' && token.length === OPENSSH_PASSWORD_MAX
        ? `; the token is ${OPENSSH_PASSWORD_MAX} characters, the most the OpenSSH client sends as a password, so it was probably cut: log in with keyboard-interactive (it asks for the rest) or use a shorter token`
        : '';
      // An issuer that is down (retriable) is not the client's failure: it counts toward no throttle.
      return this.#refuse(ctx, token, e.code, e.message + cut, !e.retriable);
    }
    await this.#open(ctx, identity, token);
  }

  /** A verified identity opens the session on the target it named as its user name. */
  async #open(ctx: AuthContext, identity: Identity, token: string): Promise<void> {
    const target = this.#deps.resolveTarget(ctx.username);
    if (target === undefined) return this.#refuse(ctx, token, ErrorCode.TARGET_UNKNOWN, `no ssh target named "${ctx.username}"`);
    if (!(await this.#deps.opened({ identity, target, username: ctx.username }))) {
      ctx.reject([], false);
      return void this.#conn.end();
    }
    ctx.accept();
  }

  /** The listener closes the connection before it logged in (deadline, or room for another). */
  async #abandon(why: Abandoned): Promise<void> {
    const { logins, events, sessionId, proxyId, clientAddress, sourceAddress } = this.#deps;
    const message = abandonedMessage(why, logins.pending.options);
    logins.throttle.failed(sourceAddress);
    this.#deps.terminate(why === 'timeout' ? 'login timeout' : 'login evicted');
    await events.emitLogged({
      type: 'AuthenticationFailed', event_id: randomUUID(), time: nowMicros(), session_id: sessionId, proxy_id: proxyId,
      protocol: 'ssh', target: this.#username, client_address: clientAddress,
      reason_code: why === 'timeout' ? ErrorCode.AUTH_TIMEOUT : ErrorCode.AUTH_EVICTED, message, claimed_issuer: null, claimed_subject: null,
    });
  }

  async #refuse(ctx: AuthContext, token: string, code: string, message: string, counts = true): Promise<void> {
    const { logins, events, sessionId, proxyId, clientAddress, sourceAddress, log } = this.#deps;
    // Offering a key that is not registered is how clients probe; only real failures count.
    if (counts) logins.throttle.failed(sourceAddress);
    const claimed = TokenVerifier.peek(token);
    log.info('login refused', { target: this.#username, reason_code: code, message });
    await events.emitLogged({
      type: 'AuthenticationFailed', event_id: randomUUID(), time: nowMicros(), session_id: sessionId, proxy_id: proxyId,
      protocol: 'ssh', target: this.#username, client_address: clientAddress, reason_code: code, message,
      claimed_issuer: claimed.issuer, claimed_subject: claimed.subject,
    });
    if (counts) this.#failures += 1;
    ctx.reject(this.#methods());
    if (this.#failures >= MAX_AUTH_FAILURES) this.#conn.end();
  }
}
