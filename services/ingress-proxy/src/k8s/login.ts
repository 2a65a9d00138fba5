import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Bus } from '../../../../core/src/bus/bus.js';
import { AuthenticationError, ErrorCode, describeError } from '../../../../core/src/errors.js';
import { TokenVerifier } from '../../../../core/src/identity/oidc.js';
import type { PendingLogin } from '../../../../core/src/logins/pending.js';
import { sourceAddress, throttledMessage, type LoginThrottle } from '../../../../core/src/logins/throttle.js';
import type { Logger } from '../../../../core/src/log.js';
import type { Masker } from '../masking/masker.js';
import { nowMicros } from '../../../../schemas/src/events.js';
import { SessionEvents } from '../session-events.js';
import { KubeSession } from './session.js';
import { failure, type Status } from './status.js';

/** What Agate knows of one client connection between its requests. */
export interface Conn {
  session: KubeSession | undefined;
  /** `ip:port` of the client. */
  address: string;
  /** The client's IP as the throttle counts it. */
  source: string;
  /** Pending until the first request with a valid token (or one that needs none). */
  login: PendingLogin | undefined;
}

interface KubeLoginOptions {
  bus: Bus;
  verifier: TokenVerifier;
  proxyId: string;
  target: string;
  throttle: LoginThrottle;
  /** Masks the user agent, client-chosen text like any recorded value. */
  audit: Masker;
  log: Logger;
}

type LoginResult = { kind: 'session'; session: KubeSession } | { kind: 'refuse'; status: Status };

/**
 * Who is asking, with no socket. HTTP has no login: each request carries the OIDC token as its
 * bearer token; the first valid one on a connection opens a session (recorded before the request
 * goes on), a later request with another token ends it and opens another. A failed or throttled
 * attempt is recorded as AuthenticationFailed and answered with a Status.
 */
export class KubeLogin {
  readonly #options: KubeLoginOptions;
  /** Refusals before any session exists are recorded through this one ordered sink. */
  readonly #authEvents: SessionEvents;
  /** Sessions whose end is being recorded. */
  readonly #closing = new Set<Promise<void>>();

  constructor(options: KubeLoginOptions) {
    this.#options = options;
    this.#authEvents = new SessionEvents(options.bus, options.log);
  }

  /** The request's session, opened on its first valid token; or the refusal to send. */
  async authenticate(conn: Conn, headers: IncomingHttpHeaders): Promise<LoginResult> {
    const { throttle, verifier, bus, proxyId, target, log } = this.#options;
    const check = throttle.check(conn.source);
    if (check.kind === 'blocked') {
      const message = throttledMessage(check, throttle.windowMs);
      if (check.record) this.recordRefusal(conn.address, ErrorCode.AUTH_THROTTLED, message);
      return { kind: 'refuse', status: failure('TooManyRequests', `Agate refused the request: ${message}`) };
    }
    const token = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '')?.[1] ?? '';
    const current = conn.session;
    if (current !== undefined && current.token === token && Date.now() / 1000 < current.expiresAt) return { kind: 'session', session: current };
    let identity;
    try {
      if (token === '') throw new AuthenticationError(ErrorCode.AUTH_TOKEN_MALFORMED, 'no bearer token: present an OIDC id-token as the kubeconfig user token');
      identity = await verifier.verify(token);
    } catch (err) {
      const e = err instanceof AuthenticationError ? err : new AuthenticationError(ErrorCode.AUTH_TOKEN_MALFORMED, 'the token could not be verified', { cause: err });
      log.info('request refused: authentication failed', { reason_code: e.code });
      // An issuer that is down (retriable) is not the client's failure: it counts toward no throttle.
      if (!e.retriable) throttle.failed(conn.source);
      const claimed = TokenVerifier.peek(token);
      await (current?.events ?? this.#authEvents).emitLogged({
        type: 'AuthenticationFailed', event_id: randomUUID(), time: nowMicros(), session_id: current?.id ?? randomUUID(), proxy_id: proxyId,
        protocol: 'kubernetes', target, client_address: conn.address, reason_code: e.code, message: e.message,
        claimed_issuer: claimed.issuer, claimed_subject: claimed.subject,
      });
      return { kind: 'refuse', status: failure('Unauthorized', `Agate authentication failed (${e.code}): ${e.message}`) };
    }
    if (current !== undefined) this.endSession(conn, 'the client presented another token');
    const session = new KubeSession({ token, identity, expiresAt: Number(identity.claims.exp ?? 0), bus, proxyId, target, log });
    try {
      await session.open(conn.address, { user_agent: this.#options.audit.maskText(String(headers['user-agent'] ?? '').slice(0, 200)).text });
    } catch (err) {
      log.error('cannot record session start; refusing the request', { error: describeError(err) });
      return { kind: 'refuse', status: failure('ServiceUnavailable', 'Agate cannot record this session (audit log unavailable); refused') };
    }
    conn.session = session;
    conn.login?.done();
    return { kind: 'session', session };
  }

  /** An attempt refused before any request could be read (throttled, abandoned in TLS). */
  recordRefusal(clientAddress: string, code: string, message: string): void {
    void this.#authEvents.emitLogged({
      type: 'AuthenticationFailed', event_id: randomUUID(), time: nowMicros(), session_id: randomUUID(), proxy_id: this.#options.proxyId,
      protocol: 'kubernetes', target: this.#options.target, client_address: clientAddress, reason_code: code, message, claimed_issuer: null, claimed_subject: null,
    });
  }

  /** Ends the connection's session, if any; {@link closed} waits for its end to be recorded. */
  endSession(conn: Conn, reason: string): void {
    const s = conn.session;
    if (s === undefined) return;
    conn.session = undefined;
    const p = s.close(reason);
    this.#closing.add(p);
    void p.finally(() => this.#closing.delete(p));
  }

  /** Settles once every session ended so far has its end recorded. */
  async closed(): Promise<void> {
    await Promise.all(this.#closing);
  }
}

/** A connection's state from its socket's addresses. */
export function connOf(remoteAddress: string | undefined, remotePort: number | undefined, login: PendingLogin | undefined): Conn {
  return { session: undefined, address: `${remoteAddress ?? 'unknown'}:${remotePort ?? 0}`, source: sourceAddress(remoteAddress), login };
}
