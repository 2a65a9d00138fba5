import type { Bus, Subscription } from '../../../../core/src/bus/bus.js';
import type { ApprovalRequested } from '../../../../schemas/src/events.js';
import type { ApprovalRow } from '../approvals.js';
import { SHOWN_CLAIMS } from './shown-claims.js';

const MAX_FRESH = 1000;
const MAX_SESSIONS = 10_000;

/**
 * Holds seen on the bus before the ledger has stored them. The store stays the inbox's source of
 * truth; this only lets a new hold reach the approver's screen while the ledger is still writing
 * it (seconds on a loaded machine), and wakes the inbox at once instead of at its next poll.
 * Delivery is at least once and per consumer group, so a hold missed here still arrives through
 * the store.
 */
export class FreshHolds {
  readonly #requests = new Map<string, ApprovalRequested>();
  /** The hold verdict's reason (the rule's message), by command id. */
  readonly #messages = new Map<string, string>();
  /** The shown claims of recently opened sessions, so a fresh hold needs no store read at all. */
  readonly #claims = new Map<string, Record<string, string>>();
  #subscription: Subscription | undefined;

  readonly #bus: Bus;
  readonly #onHold: () => void;

  constructor(bus: Bus, onHold: () => void) {
    this.#bus = bus;
    this.#onHold = onHold;
  }

  async start(): Promise<void> {
    this.#subscription = await this.#bus.subscribe({
      group: 'console', types: ['SessionOpened', 'ApprovalRequested', 'Verdict'],
      // Every statement has a Verdict; only holds matter here, so the rest do not wake this group.
      accept: (e) => e.type !== 'Verdict' || e.decision === 'hold',
      handler: async (batch) => {
        let held = false;
        for (const e of batch) {
          if (e.type === 'SessionOpened') remember(this.#claims, e.session_id, shownClaims(e.identity.claims), MAX_SESSIONS);
          if (e.type === 'Verdict' && e.decision === 'hold') {
            remember(this.#messages, e.command_id, e.reason);
            held = true;
          }
          if (e.type === 'ApprovalRequested' && e.expires_at * 1 > Date.now() * 1000) {
            remember(this.#requests, e.approval_id, e);
            held = true;
          }
        }
        if (held) this.#onHold();
      },
    });
  }

  async close(): Promise<void> {
    await this.#subscription?.close();
  }

  /** Unexpired holds the store does not list yet (`stored`), as pending rows; forgets the stored ones. */
  unstored(stored: ReadonlySet<string>, nowMicros: number): ApprovalRow[] {
    const rows: ApprovalRow[] = [];
    for (const [id, r] of this.#requests) {
      if (stored.has(id) || r.expires_at <= nowMicros) {
        this.#requests.delete(id);
        continue;
      }
      rows.push({
        approval_id: id, command_id: r.command_id, session_id: r.session_id, requested_at: new Date(r.time / 1000).toISOString(),
        rule_id: r.rule_id, target: r.target, requester_issuer: r.requester_issuer, requester_subject: r.requester_subject, text: r.text,
        required: r.required, expires_at: new Date(r.expires_at / 1000).toISOString(), status: 'pending', approvals: 0, final_reason: null,
      });
    }
    return rows;
  }

  /** The hold `approvalId` as its event announced it, while it is unexpired and not yet known to be stored. */
  request(approvalId: string): ApprovalRequested | undefined {
    return this.#requests.get(approvalId);
  }

  /** What the bus brought of a hold's requester claims and message (either may still be missing). */
  enrichment(row: Pick<ApprovalRow, 'session_id' | 'command_id'>): { claims?: Record<string, string>; message?: string } {
    return { claims: this.#claims.get(row.session_id), message: this.#messages.get(row.command_id) };
  }
}

/** The claims an approver is shown, from all of an identity's claims. */
function shownClaims(all: Record<string, string>): Record<string, string> {
  return Object.fromEntries(SHOWN_CLAIMS.filter((c) => all[c] !== undefined && all[c] !== '').map((c) => [c, all[c]!]));
}

function remember<V>(map: Map<string, V>, key: string, value: V, max = MAX_FRESH): void {
  while (map.size >= max) map.delete(map.keys().next().value!);
  map.set(key, value);
}
