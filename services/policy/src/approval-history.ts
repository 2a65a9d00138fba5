import type { Store } from '../../../core/src/store/store.js';
import type { ApprovalDecision, ApprovalRequested } from '../../../schemas/src/events.js';

/** A held command as the ledger recorded it, with the approvers' answers so far, in order. */
export interface RecordedApproval {
  request: ApprovalRequested;
  answers: ApprovalDecision[];
}

/**
 * Where a restarted policy service finds the approvals it held: the ledger's record of
 * `ApprovalRequested` events with no final verdict yet and not expired.
 */
export interface ApprovalHistory {
  /** Every approval still open at `nowMicros`. */
  pending(nowMicros: number): Promise<RecordedApproval[]>;
  /** One approval, if it is still open at `nowMicros`. */
  find(approvalId: string, nowMicros: number): Promise<RecordedApproval | undefined>;
}

/** Reads approvals from the ledger table (embedded engine or ClickHouse server). */
export class StoreApprovalHistory implements ApprovalHistory {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  pending(nowMicros: number): Promise<RecordedApproval[]> {
    return this.#open(nowMicros, '');
  }

  async find(approvalId: string, nowMicros: number): Promise<RecordedApproval | undefined> {
    return (await this.#open(nowMicros, approvalId))[0];
  }

  async #open(nowMicros: number, id: string): Promise<RecordedApproval[]> {
    // One pass: the open requests, and every answer given to them, in ledger order.
    const rows = await this.#store.query<{ event_type: string; body: string }>(
      `SELECT event_type, body FROM agate.ledger
       WHERE event_type IN ('ApprovalRequested', 'ApprovalDecision')
         AND JSONExtractString(body, 'approval_id') IN (
           SELECT JSONExtractString(body, 'approval_id') FROM agate.ledger
           WHERE event_type = 'ApprovalRequested' AND ({id:String} = '' OR JSONExtractString(body, 'approval_id') = {id:String})
             AND JSONExtractUInt(body, 'expires_at') > {now:UInt64}
             AND JSONExtractString(body, 'approval_id') NOT IN (
               SELECT JSONExtractString(body, 'approval_id') FROM agate.ledger
               WHERE event_type = 'Verdict' AND JSONExtractString(body, 'approval_id') != '' AND JSONExtractString(body, 'decision') != 'hold'))
       ORDER BY time, seq`,
      { id, now: nowMicros },
    );
    const open = new Map<string, RecordedApproval>();
    for (const r of rows) {
      if (r.event_type !== 'ApprovalRequested') continue;
      const request = JSON.parse(r.body) as ApprovalRequested;
      // A redelivered event may sit in the ledger twice: the first one counts.
      if (!open.has(request.approval_id)) open.set(request.approval_id, { request, answers: [] });
    }
    for (const r of rows) {
      if (r.event_type !== 'ApprovalDecision') continue;
      const answer = JSON.parse(r.body) as ApprovalDecision;
      open.get(answer.approval_id)?.answers.push(answer);
    }
    return [...open.values()];
  }
}
