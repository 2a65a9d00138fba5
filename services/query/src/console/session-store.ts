import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Identity } from '../../../../schemas/src/events.js';
import type { Role } from '../roles.js';
import type { LoginFlow } from './oidc-login.js';
import type { SamlSubject } from './saml-login.js';

/** An unfinished sign-in, keyed by the flow cookie: OIDC's state/nonce/verifier, or the SAML AuthnRequest's id. */
type SignInFlow = { kind: 'oidc'; oidc: LoginFlow } | { kind: 'saml'; requestId: string };

/** A verified SAML assertion waiting for the browser to come back with its flow cookie (see console.ts). */
interface SamlTicket {
  identity: Identity;
  subject: SamlSubject;
  inResponseTo: string;
}

/** A signed-in person. The id travels in the session cookie; the CSRF token only in page requests. */
export interface ConsoleSession {
  id: string;
  identity: Identity;
  roles: ReadonlySet<Role>;
  csrf: string;
  expiresAt: number;
  /** A SAML sign-in's subject, for single logout (ours to the IdP, and the IdP's to us). */
  saml?: SamlSubject;
}

const MAX_SESSIONS = 10_000;
const MAX_FLOWS = 10_000;
/** A sign-in left unfinished this long is forgotten. */
const FLOW_TTL_MS = 10 * 60_000;
/** The hop from the ACS page to /ui/saml/finish is immediate; a ticket older than this is stale. */
const TICKET_TTL_MS = 60_000;

const newId = () => randomBytes(32).toString('base64url');

/**
 * Console sessions and unfinished sign-in flows, in memory: a restart signs everyone out, which
 * is the safe failure. Both maps are bounded; past the bound the oldest entry goes (Maps keep
 * insertion order), so a flood of sign-in attempts cannot grow memory.
 */
export class SessionStore {
  readonly #sessions = new Map<string, ConsoleSession>();
  readonly #flows = new Map<string, { flow: SignInFlow; expiresAt: number }>();
  readonly #tickets = new Map<string, { ticket: SamlTicket; expiresAt: number }>();

  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(ttlMs: number, now: () => number = Date.now) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  create(identity: Identity, roles: ReadonlySet<Role>, saml?: SamlSubject): ConsoleSession {
    const session: ConsoleSession = { id: newId(), identity, roles, csrf: newId(), expiresAt: this.#now() + this.#ttlMs, ...(saml === undefined ? {} : { saml }) };
    bounded(this.#sessions, MAX_SESSIONS).set(session.id, session);
    return session;
  }

  get(id: string | undefined): ConsoleSession | undefined {
    if (id === undefined) return undefined;
    const s = this.#sessions.get(id);
    if (s !== undefined && s.expiresAt <= this.#now()) {
      this.#sessions.delete(id);
      return undefined;
    }
    return s;
  }

  delete(id: string): void {
    this.#sessions.delete(id);
  }

  /** Ends every session `match` picks (an IdP's logout of a person); returns how many. */
  deleteWhere(match: (s: ConsoleSession) => boolean): number {
    let ended = 0;
    for (const [id, s] of this.#sessions) {
      if (!match(s)) continue;
      this.#sessions.delete(id);
      ended += 1;
    }
    return ended;
  }

  startFlow(flow: SignInFlow): string {
    const id = newId();
    bounded(this.#flows, MAX_FLOWS).set(id, { flow, expiresAt: this.#now() + FLOW_TTL_MS });
    return id;
  }

  /** The flow for `id`, once: a callback replayed with the same cookie finds nothing. */
  takeFlow(id: string | undefined): SignInFlow | undefined {
    return take(this.#flows, id, this.#now())?.flow;
  }

  putTicket(ticket: SamlTicket): string {
    const id = newId();
    bounded(this.#tickets, MAX_FLOWS).set(id, { ticket, expiresAt: this.#now() + TICKET_TTL_MS });
    return id;
  }

  /** The ticket for `id`, once. */
  takeTicket(id: string | undefined | null): SamlTicket | undefined {
    return take(this.#tickets, id ?? undefined, this.#now())?.ticket;
  }
}

/** Constant-time comparison of the CSRF token a request carries with the session's. */
export function csrfMatches(session: ConsoleSession, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

function take<V extends { expiresAt: number }>(map: Map<string, V>, id: string | undefined, now: number): V | undefined {
  if (id === undefined) return undefined;
  const v = map.get(id);
  map.delete(id);
  return v !== undefined && v.expiresAt > now ? v : undefined;
}

function bounded<K, V>(map: Map<K, V>, max: number): Map<K, V> {
  while (map.size >= max) map.delete(map.keys().next().value as K);
  return map;
}
