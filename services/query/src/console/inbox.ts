import type { Store } from '../../../../core/src/store/store.js';
import { listApprovals, type ApprovalRow } from '../approvals.js';
import type { FreshHolds } from './fresh-holds.js';
import { SHOWN_CLAIMS } from './shown-claims.js';


/** One held command as the inbox shows it: the approval row plus who asked and why it was held. */
interface InboxItem extends ApprovalRow {
  /** The hold verdict's reason: the rule's message, or "held for approval by rule R". */
  message: string | null;
  claims: Record<string, string>;
  /**
   * The values bound to the held statement's `$1`, `$2` … (masked as recorded): the text alone
   * does not say which rows `DELETE … WHERE id = ANY($1)` deletes. Null until read from the store.
   */
  parameters: (string | null)[] | null;
}

const RECENT = 50;
/** Enrichments remembered; an approval's requester and hold message never change once recorded. */
const MAX_REMEMBERED = 1000;

type Enrichment = Pick<InboxItem, 'message' | 'claims' | 'parameters'>;

/**
 * Reads the newest held commands, pending and settled, each with the requester's session claims
 * and the hold's message, all from the ledger's views like `/v1/approvals`. The claims and message
 * of an approval are looked up once and remembered, so a poll costs one query while nothing new
 * is held.
 */
export class InboxReader {
  readonly #known = new Map<string, Enrichment>();
  #stored: ApprovalRow[] = [];

  readonly #store: Store;
  readonly #fresh: FreshHolds | undefined;

  constructor(store: Store, fresh?: FreshHolds) {
    this.#store = store;
    this.#fresh = fresh;
  }

  async read(nowMicros: number): Promise<InboxItem[]> {
    this.#stored = await listApprovals(this.#store, { limit: RECENT, nowMicros });
    const rows = this.#withUnstored(nowMicros);
    const missing = rows.filter((r) => !this.#known.has(r.approval_id));
    if (missing.length > 0) await this.#enrich(missing);
    return this.#items(rows);
  }

  /**
   * The inbox from the last store read plus the holds the bus has brought since, without reading
   * the store: what a new hold's wake-up sends at once, before the full read that follows.
   */
  readCached(nowMicros: number): InboxItem[] {
    return this.#items(this.#withUnstored(nowMicros));
  }

  #withUnstored(nowMicros: number): ApprovalRow[] {
    const unstored = this.#fresh?.unstored(new Set(this.#stored.map((r) => r.approval_id)), nowMicros) ?? [];
    return [...unstored, ...this.#stored];
  }

  #items(rows: readonly ApprovalRow[]): InboxItem[] {
    return rows.map((r) => {
      const known = this.#known.get(r.approval_id);
      if (known !== undefined) return { ...r, ...known };
      // The bus brings no parameters: a fresh hold's card waits for the store's read for them.
      const { claims, message } = this.#fresh?.enrichment(r) ?? {};
      return { ...r, claims: claims ?? {}, message: message ?? null, parameters: null };
    });
  }

  async #enrich(rows: readonly ApprovalRow[]): Promise<void> {
    const claimColumns = SHOWN_CLAIMS.map((_c, i) => `claims[{c${i}:String}] AS c${i}`).join(', ');
    const claimParams = Object.fromEntries(SHOWN_CLAIMS.map((c, i) => [`c${i}`, c]));
    const [sessions, holds, commands] = await Promise.all([
      this.#store.query<Record<string, string>>(`SELECT session_id, ${claimColumns} FROM agate.q_sessions WHERE session_id IN {ids:Array(String)} LIMIT 1 BY session_id`,
        { ids: [...new Set(rows.map((r) => r.session_id))], ...claimParams }),
      this.#store.query<{ command_id: string; reason: string }>(`SELECT command_id, any(reason) AS reason FROM agate.verdicts WHERE command_id IN {ids:Array(String)} AND decision = 'hold' GROUP BY command_id`,
        { ids: rows.map((r) => r.command_id) }),
      this.#store.query<{ command_id: string; parameters: (string | null)[] }>(
        `SELECT event_id AS command_id, JSONExtract(body, 'parameters', 'Array(Nullable(String))') AS parameters FROM agate.ledger WHERE event_type = 'Command' AND event_id IN {ids:Array(String)}`,
        { ids: rows.map((r) => r.command_id) }),
    ]);
    const claimsOf = new Map(sessions.map((s) => [s.session_id, Object.fromEntries(SHOWN_CLAIMS.map((c, i) => [c, s[`c${i}`] ?? '']).filter(([, v]) => v !== ''))]));
    const messageOf = new Map(holds.map((h) => [h.command_id, h.reason]));
    const parametersOf = new Map(commands.map((c) => [c.command_id, c.parameters]));
    for (const r of rows) {
      const claims = claimsOf.get(r.session_id);
      const message = messageOf.get(r.command_id);
      const parameters = parametersOf.get(r.command_id);
      // Remembered only once all are in the store; until then shown without and asked again.
      if (claims === undefined || message === undefined || parameters === undefined) continue;
      this.#remember(r.approval_id, { claims, message, parameters });
    }
  }

  #remember(approvalId: string, e: Enrichment): void {
    while (this.#known.size >= MAX_REMEMBERED) this.#known.delete(this.#known.keys().next().value!);
    this.#known.set(approvalId, e);
  }
}
