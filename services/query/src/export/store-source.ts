import type { Store } from '../../../../core/src/store/store.js';
import { listChains } from '../../../ledger/src/verify.js';
import { toOcsf, type CommandRecord, type LoginRecord, type OcsfEvent } from '../ocsf/map.js';
import type { ExportSource } from './types.js';

/**
 * Reads export records from the analyst views. A command is exported when its response is
 * recorded (its verdict is recorded before it), so one event carries the command, the verdict
 * and the outcome; logins and refused logins are exported at their own position.
 */
export class StoreExportSource implements ExportSource {
  constructor(private readonly store: Store) {}

  chains(): Promise<string[]> {
    return listChains(this.store);
  }

  async read(chainId: string, afterSeq: number, limit: number): Promise<OcsfEvent[]> {
    const p = { chain: chainId, after: afterSeq, limit };
    const range = 'chain_id = {chain:String} AND seq > {after:UInt64}';
    const [responses, logins] = await Promise.all([
      this.store.query<Omit<CommandRecord, 'kind'>>(
        `SELECT chain_id, seq, response_id AS event_id, session_id, time, command_id, status, command_tag, rows, duration_us, error_code
         FROM agate.responses WHERE ${range} ORDER BY seq LIMIT {limit:UInt32}`, p),
      this.store.query<Omit<LoginRecord, 'kind'>>(
        `SELECT * FROM (
           SELECT chain_id, seq, session_id AS event_id, session_id, opened_at AS time, 'success' AS outcome, protocol, target,
             toNullable(issuer) AS issuer, toNullable(subject) AS subject, client_address, CAST(NULL AS Nullable(String)) AS reason_code
           FROM agate.session_index WHERE ${range}
           UNION ALL
           SELECT chain_id, seq, event_id, session_id, time, 'failure', protocol, target, claimed_issuer, claimed_subject, client_address, toNullable(reason_code)
           FROM agate.auth_failures WHERE ${range}
         ) ORDER BY seq LIMIT {limit:UInt32}`, p),
    ]);
    // Both lists start after the same position; keep the first `limit` of their merge so no
    // position is skipped.
    const merged = [
      ...responses.map((r) => ({ ...r, kind: 'command' as const, seq: Number(r.seq) })),
      ...logins.map((l) => ({ ...l, kind: 'login' as const, seq: Number(l.seq) })),
    ].sort((a, b) => a.seq - b.seq).slice(0, limit);
    const commands = await this.#commands(merged.filter((r) => r.kind === 'command').map((r) => r as Omit<CommandRecord, 'kind'> & { kind: 'command' }));
    return merged.flatMap((r) => {
      if (r.kind === 'login') return [toOcsf(r as LoginRecord)];
      const full = commands.get(r.event_id);
      return full === undefined ? [] : [toOcsf(full)];
    });
  }

  /** Joins each response with its command and verdict, reading only the sessions concerned. */
  async #commands(responses: (Omit<CommandRecord, 'kind'> & { kind: 'command' })[]): Promise<Map<string, CommandRecord>> {
    const out = new Map<string, CommandRecord>();
    if (responses.length === 0) return out;
    const p = { sessions: [...new Set(responses.map((r) => r.session_id))], ids: responses.map((r) => r.command_id) };
    const [commands, verdicts, opened] = await Promise.all([
      this.store.query<{ command_id: string; protocol: string; target: string; issuer: string; subject: string; text: string }>(
        'SELECT command_id, protocol, target, issuer, subject, text FROM agate.commands WHERE session_id IN {sessions:Array(String)} AND command_id IN {ids:Array(String)}', p),
      this.store.query<{ command_id: string; decision: string; rule_id: string | null; reason: string }>(
        'SELECT command_id, decision, rule_id, reason FROM agate.verdicts WHERE session_id IN {sessions:Array(String)} AND command_id IN {ids:Array(String)}', p),
      this.store.query<{ session_id: string; client_address: string }>(
        'SELECT session_id, client_address FROM agate.session_index WHERE session_id IN {sessions:Array(String)}', p),
    ]);
    const cmd = new Map(commands.map((c) => [c.command_id, c]));
    const ver = new Map(verdicts.map((v) => [v.command_id, v]));
    const addr = new Map(opened.map((o) => [o.session_id, o.client_address]));
    for (const r of responses) {
      const c = cmd.get(r.command_id);
      if (c === undefined) continue; // a response without its command cannot be described; verification reports such gaps
      const v = ver.get(r.command_id);
      out.set(r.event_id, {
        ...r, ...c, kind: 'command', client_address: addr.get(r.session_id) ?? '',
        decision: v?.decision ?? null, rule_id: v?.rule_id ?? null, reason: v?.reason ?? null,
        rows: Number(r.rows), duration_us: Number(r.duration_us),
      });
    }
    return out;
  }
}
