import { RowBinaryReader } from '../../../../core/src/store/row-binary.js';
import type { Store } from '../../../../core/src/store/store.js';
import { microsToDateTime64 } from '../../../ledger/src/schema.js';
import { listChains } from '../../../ledger/src/verify.js';
import { initSqlParser } from '../../../../core/src/sql/analyze.js';
import { DECISION_LISTS, type DecisionEvents } from '../queries.js';
import type { ResponseOutcome } from '../../../../schemas/src/events.js';
import { finalDecision } from '../final-decision.js';
import { toOcsf, type CommandRecord, type LoginRecord, type OcsfEvent } from '../ocsf/map.js';
import type { ExportSource } from './types.js';

/** A ledger row as the export reads it: the queryable columns and the decoded event. */
interface LedgerRow {
  seq: number;
  event_type: string;
  event_id: string;
  session_id: string;
  time: string;
  body: string;
}

type Body = Record<string, unknown>;
type CommandInfo = Pick<CommandRecord, 'protocol' | 'target' | 'issuer' | 'subject' | 'claims' | 'text' | 'attributes' | 'command_time'>;
/** What decided a command: its verdicts, the hold's request and the approvers' answers, in ledger order. */

/** Context entries (commands, verdicts, session addresses) remembered across reads, per kind. */
const CONTEXT_LIMIT = 30_000;

const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/**
 * Reads export records from the ledger in one primary-key range read per batch: the rows after a
 * position in sequence order, decoded here. A command is exported when its response is recorded
 * (its command and verdict come before it in the chain, usually in the same or the previous
 * read, whose context is kept); logins and refused logins are exported at their own position.
 * A response whose command lies further back is completed with one lookup by session.
 */
export class StoreExportSource implements ExportSource {
  readonly #commands = new Map<string, CommandInfo>();
  readonly #decisions = new Map<string, DecisionEvents>();
  readonly #addresses = new Map<string, string>();

  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  chains(): Promise<string[]> {
    return listChains(this.#store);
  }

  async read(chainId: string, afterSeq: number, limit: number): Promise<OcsfEvent[]> {
    await initSqlParser(); // the activity of a statement comes from its parse tree
    // About a third of the records complete an export event (responses and logins).
    const window = Math.max(1000, limit * 3);
    let from = afterSeq;
    for (;;) {
      // A bounded key range, not `LIMIT`: the engine then reads just these granules. Positions
      // stay within what a JS number holds exactly (parameters refuse anything larger).
      const to = Math.min(from + window, Number.MAX_SAFE_INTEGER);
      const rows = await this.#rows('chain_id = {chain:String} AND seq > {from:UInt64} AND seq <= {to:UInt64} ORDER BY seq', { chain: chainId, from, to });
      const records = await this.#records(chainId, rows, limit);
      if (records.length > 0) return records.map(toOcsf);
      // Nothing completed in this window (verdicts and commands only, or records expired by
      // retention before it): go on from the next stored record, if there is one.
      const next = rows.length === window ? to : await this.#nextStored(chainId, to);
      if (next === undefined) return [];
      from = next;
    }
  }

  /** The position before the first stored record after `after`, or undefined at the chain's end. */
  async #nextStored(chainId: string, after: number): Promise<number | undefined> {
    const [row] = await this.#store.query<{ next: string | null }>(
      'SELECT min(seq) AS next FROM agate.ledger WHERE chain_id = {chain:String} AND seq > {after:UInt64} HAVING count() > 0',
      { chain: chainId, after },
    );
    return row === undefined || row.next === null ? undefined : Number(row.next) - 1;
  }

  /** Turns rows into at most `limit` export records, in sequence order. */
  async #records(chainId: string, rows: readonly LedgerRow[], limit: number): Promise<(CommandRecord | LoginRecord)[]> {
    const out: (CommandRecord | LoginRecord | undefined)[] = [];
    const missing: { index: number; response: CommandRecord }[] = [];
    for (const row of rows) {
      if (out.length >= limit) break;
      const e = JSON.parse(row.body) as Body;
      const at = { chain_id: chainId, seq: row.seq, event_id: row.event_id, session_id: row.session_id, time: row.time };
      switch (row.event_type) {
        case 'SessionOpened': {
          const identity = e.identity as Body;
          remember(this.#addresses, row.session_id, String(e.client_address ?? ''));
          out.push({
            ...at, kind: 'login', outcome: 'success', protocol: String(e.protocol), target: String(e.target),
            issuer: str(identity.issuer), subject: str(identity.subject), claims: claimsOf(identity), client_address: String(e.client_address ?? ''),
            reason_code: null, message: null,
          });
          break;
        }
        case 'AuthenticationFailed':
        case 'ApiAuthenticationFailed':
          out.push({
            ...at, kind: 'login', outcome: 'failure', protocol: String(e.protocol), target: String(e.target), issuer: str(e.claimed_issuer),
            subject: str(e.claimed_subject), claims: {}, client_address: String(e.client_address ?? ''), reason_code: str(e.reason_code),
            message: str(e.message),
          });
          break;
        case 'Response': {
          const response = responseRecord(at, e);
          const record = this.#complete(response);
          if (record === undefined) missing.push({ index: out.length, response });
          out.push(record);
          break;
        }
        case 'Notification':
          // Not exported (yet): the export's records are a command with its outcome, or a login,
          // and a notification is neither; it stays in the ledger and the session's timeline.
          break;
        default:
          this.#learn(row, e);
      }
    }
    if (missing.length > 0) {
      await this.#lookBack([...new Set(missing.map((m) => m.response.session_id))]);
      for (const m of missing) out[m.index] = this.#complete(m.response, true);
    }
    // A response whose command is not in the ledger cannot be described; verification reports such gaps.
    return out.filter((r) => r !== undefined);
  }

  /** Remembers what a command, a verdict, an approval or a session opening tells about later responses. */
  #learn(row: LedgerRow, e: Body): void {
    if (row.event_type === 'SessionOpened') remember(this.#addresses, row.session_id, String(e.client_address ?? ''));
    else if (row.event_type === 'Command') {
      const identity = e.identity as Body;
      remember(this.#commands, row.event_id, {
        protocol: String(e.protocol), target: String(e.target), issuer: String(identity.issuer), subject: String(identity.subject),
        claims: claimsOf(identity), text: String(e.text), attributes: (e.attributes ?? {}) as Record<string, string>, command_time: row.time,
      });
    } else if (DECISION_LISTS[row.event_type] !== undefined) {
      const id = String(e.command_id);
      let d = this.#decisions.get(id);
      if (d === undefined) remember(this.#decisions, id, (d = { verdicts: [], requests: [], answers: [], refused: [] }));
      const list = d[DECISION_LISTS[row.event_type]!];
      // A redelivered event may be stored twice; the look-back may read one again.
      if (!(list as { event_id: string }[]).some((x) => x.event_id === row.event_id)) (list as unknown[]).push(e);
    }
  }

  /**
   * The command record with its command, final decision and client address, when the command is
   * known (and, unless `final`, the session's address too: it may lie further back).
   */
  #complete(r: CommandRecord, final = false): CommandRecord | undefined {
    const c = this.#commands.get(r.command_id);
    const address = this.#addresses.get(r.session_id);
    if (c === undefined || (address === undefined && !final)) return undefined;
    const d = this.#decisions.get(r.command_id);
    return { ...r, ...c, client_address: address ?? '', final: d === undefined ? null : finalDecision(d) ?? null };
  }

  /** Learns the commands and openings of sessions whose responses came after the context this source has seen. */
  async #lookBack(sessions: string[]): Promise<void> {
    const earlier = await this.#rows("session_id IN {sessions:Array(String)} AND event_type IN ('SessionOpened', 'Command', 'Verdict', 'ApprovalRequested', 'ApprovalDecision', 'ApprovalRefused') ORDER BY seq", { sessions });
    for (const row of earlier) this.#learn(row, JSON.parse(row.body) as Body);
  }

  /** Ledger rows in RowBinary: about ten times cheaper to take apart here than JSON rows holding JSON bodies. */
  async #rows(where: string, params: Record<string, unknown>): Promise<LedgerRow[]> {
    const r = new RowBinaryReader(await this.#store.queryRowBinary(
      `SELECT seq, toString(event_type), event_id, session_id, toUnixTimestamp64Micro(time), body FROM agate.ledger WHERE ${where}`, params));
    const rows: LedgerRow[] = [];
    while (!r.done) rows.push({ seq: r.uint64(), event_type: r.string(), event_id: r.string(), session_id: r.string(), time: microsToDateTime64(r.int64()), body: r.string() });
    return rows;
  }
}

function responseRecord(at: Pick<CommandRecord, 'chain_id' | 'seq' | 'event_id' | 'session_id' | 'time'>, e: Body): CommandRecord {
  return {
    ...at, kind: 'command', command_id: String(e.command_id), command_time: at.time, protocol: '', target: '', issuer: '', subject: '', claims: {},
    client_address: '', text: '', attributes: {}, final: null, status: String(e.status), command_tag: str(e.command_tag), rows: Number(e.rows ?? 0),
    bytes: Number(e.bytes ?? 0), duration_us: Number(e.duration_us ?? 0), error_code: str(e.error_code), error_message: str(e.error_message),
    outcome: (e.outcome ?? 'observed') as ResponseOutcome, // absent in records written before schema v7
  };
}

const claimsOf = (identity: Body): Record<string, string> => (identity.claims ?? {}) as Record<string, string>;

/** Keeps a bounded, insertion-ordered context map: the oldest tenth goes when it is full. */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.set(key, value);
  if (map.size > CONTEXT_LIMIT) {
    let drop = Math.floor(CONTEXT_LIMIT / 10);
    for (const k of map.keys()) {
      if (drop-- <= 0) break;
      map.delete(k);
    }
  }
}
