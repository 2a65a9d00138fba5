import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AgateConfig } from '../../core/src/config.js';
import { AgateError, ErrorCode } from '../../core/src/errors.js';
import type { Store } from '../../core/src/store/store.js';
import { EventCodec } from '../../schemas/src/codec.js';
import { openCheckpoint, type Checkpoint } from '../../services/ledger/src/checkpoint.js';
import { parseVerifierKey, verifierKey } from '../../services/ledger/src/note.js';
import { verifyConsistencyProofFile, verifyInclusionProofFile, type ConsistencyProofFile, type InclusionProofFile } from '../../services/ledger/src/proof-file.js';
import { exportLedgerRows } from '../../services/ledger/src/ledger-export.js';
import { proveConsistency, proveInclusion } from '../../services/ledger/src/prove.js';
import { chainsToVerify, verifyWithKnownCheckpoints, type VerifyReport, type VerifyState } from '../../services/ledger/src/verify.js';
import { checkCommandFacts, type CommandFactsReport } from '../../services/query/src/facts-check.js';
import { checkSessionTables, type SessionTablesReport } from '../../services/query/src/session-check.js';
import { refillSessionTables } from '../../services/query/src/session-refill.js';
import { ApiClient } from './api-client.js';
import { checkpointSources, ledgerSigner } from '../../services/ledger/src/from-config.js';
import { UsageError } from './usage.js';

/*
 * The ledger's CLI commands: verify (full, incremental, against checkpoint files), prove,
 * consistency, verify-proof (offline, no store), ledger-key and ledger-export.
 */

export interface LedgerFlags {
  offline?: boolean;
  json?: boolean;
  checkpoint?: string[];
  key?: string;
  state?: string;
  deep?: boolean;
  /** verify: when the session tables differ from a ledger that verified, derive them again from it. */
  'repair-sessions'?: boolean;
  proof?: string;
  out?: string;
  token?: string;
  url?: string;
}

/** `--key` is the verifier key itself or a file holding it. */
function readKey(value: string): string {
  return existsSync(value) ? readFileSync(value, 'utf8').trim() : value;
}

function trustedKey(config: AgateConfig, flags: LedgerFlags): string {
  return flags.key !== undefined ? readKey(flags.key) : verifierKey(ledgerSigner(config));
}

async function withStore<T>(config: AgateConfig, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await (await import('./components.js')).openStore(config); // loaded only for --offline: it brings every service
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

export async function verifyCommand(config: AgateConfig, flags: LedgerFlags): Promise<number> {
  const direct = flags.offline || flags.checkpoint !== undefined || flags.state !== undefined || flags.deep || flags['repair-sessions'];
  let chains: VerifyReport[];
  /** With --repair-sessions: what the session tables lacked before they were derived again, or why they were not. */
  let repair: string | undefined;
  let sessions: SessionTablesReport | null | undefined;
  let facts: CommandFactsReport | null | undefined;
  if (direct) {
    const verifiers = [parseVerifierKey(trustedKey(config, flags))];
    const byChain = new Map<string, Checkpoint[]>();
    for (const file of flags.checkpoint ?? []) {
      const cp = openCheckpoint(readFileSync(file, 'utf8'), verifiers);
      const prefix = `${config.ledger.origin}/`;
      if (!cp.origin.startsWith(prefix)) throw new AgateError(ErrorCode.LEDGER_CHECKPOINT_MALFORMED, `${file} is a checkpoint of ${cp.origin}, not of ${config.ledger.origin}`);
      const chain = cp.origin.slice(prefix.length);
      byChain.set(chain, [...(byChain.get(chain) ?? []), cp]);
    }
    const state: Record<string, VerifyState> = flags.state !== undefined && existsSync(flags.state) ? (JSON.parse(readFileSync(flags.state, 'utf8')) as { chains: Record<string, VerifyState> }).chains : {};
    // Besides the files named, the checkpoints in the store and in ledger.checkpoint.dir count.
    const sources = { verifiers, dirs: checkpointSources(config).dirs };
    chains = await withStore(config, async (store) => {
      const codec = new EventCodec();
      const ids = new Set([...(await chainsToVerify(store, sources.dirs)), ...byChain.keys()]);
      const out: VerifyReport[] = [];
      for (const c of [...ids].sort()) out.push(await verifyWithKnownCheckpoints(store, codec, c, sources, { checkpoints: byChain.get(c), resume: state[c], deep: flags.deep }));
      // The session tables behind agate.sessions are derived from the ledger: checked against it.
      sessions = await checkSessionTables(store, 0);
      if (flags['repair-sessions'] && sessions?.ok === false) {
        // Derived only from a ledger that verified; rows the ledger does not account for stay and are reported.
        if (out.every((c) => c.ok)) {
          for (const c of out) await refillSessionTables(store, c.chain_id, 1, c.head.seq);
          repair = `derived again from the verified ledger (before: ${sessions.problem})`;
          sessions = await checkSessionTables(store, 0);
        } else repair = 'not derived again: a chain did not verify';
      }
      facts = await checkCommandFacts(store);
      return out;
    });
    if (flags.state !== undefined && chains.every((c) => c.ok)) {
      writeFileSync(flags.state, JSON.stringify({ chains: Object.fromEntries(chains.map((c) => [c.chain_id, c.state])) }, null, 2) + '\n');
    }
  } else {
    const api = await ApiClient.fromConfig(config, flags.token, flags.url);
    ({ chains, sessions, facts } = await api.get<{ chains: VerifyReport[]; sessions?: SessionTablesReport | null; facts?: CommandFactsReport | null }>('/v1/ledger/verify'));
  }
  const ok = chains.every((c) => c.ok) && (sessions ?? undefined)?.ok !== false && (facts ?? undefined)?.ok !== false;
  // The same shape as GET /v1/ledger/verify answers.
  if (flags.json) console.log(JSON.stringify({ ok, chains, sessions: sessions ?? null, facts: facts ?? null, ...(repair === undefined ? {} : { sessions_repair: repair }) }, null, 2));
  else {
    for (const c of chains) {
      for (const w of c.warnings ?? []) console.log(`chain ${c.chain_id}: warning: checkpoint not used: ${w}`);
      if (c.ok) {
        const against = c.checkpoints.length > 0 ? `; matches signed checkpoint${c.checkpoints.length > 1 ? 's' : ''} ${c.checkpoints.join(', ')}` : '';
        const expired = c.expired > 0 ? `; records 1..${c.expired} expired by retention` : '';
        console.log(`chain ${c.chain_id}: OK, records ${c.from}..${c.head.seq} verified (${c.records})${against}${expired}; head ${c.head.hash}, root ${c.root}`);
      } else {
        const f = c.failure!;
        console.log(`chain ${c.chain_id}: BROKEN at record ${f.seq}${f.event_id ? ` (event ${f.event_id})` : ''}: ${f.problem} [${f.kind}]`);
      }
    }
    if (chains.length === 0) console.log('the ledger is empty');
    if (repair !== undefined) console.log(`session tables: ${repair}`);
    if (sessions !== undefined && sessions !== null) console.log(sessions.ok ? `session tables: OK, ${sessions.sessions} sessions match the ledger` : `session tables: BROKEN: ${sessions.problem}`);
    if (facts !== undefined && facts !== null) console.log(facts.ok ? `statement facts: OK, ${facts.commands} commands match the ledger` : `statement facts: BROKEN: ${facts.problem}`);
  }
  return ok ? 0 : 1;
}

function emit(value: unknown, flags: LedgerFlags): void {
  const text = JSON.stringify(value, null, 2) + '\n';
  if (flags.out !== undefined) writeFileSync(flags.out, text);
  else process.stdout.write(text);
}

export async function proveCommand(config: AgateConfig, eventId: string, flags: LedgerFlags): Promise<number> {
  const note = flags.checkpoint?.[0] === undefined ? undefined : readFileSync(flags.checkpoint[0], 'utf8');
  let proof: InclusionProofFile;
  if (flags.offline) proof = await withStore(config, (store) => proveInclusion(store, eventId, note));
  else {
    const api = await ApiClient.fromConfig(config, flags.token, flags.url);
    const size = note === undefined ? '' : `?size=${note.split('\n')[1]}`;
    proof = await api.get<InclusionProofFile>(`/v1/ledger/proof/${encodeURIComponent(eventId)}${size}`);
    if (note !== undefined) proof.checkpoint = note;
  }
  emit(proof, flags);
  return 0;
}

export async function consistencyCommand(config: AgateConfig, oldFile: string, newFile: string, flags: LedgerFlags): Promise<number> {
  const [oldNote, newNote] = [readFileSync(oldFile, 'utf8'), readFileSync(newFile, 'utf8')];
  let proof: ConsistencyProofFile;
  if (flags.offline) proof = await withStore(config, (store) => proveConsistency(store, oldNote, newNote));
  else {
    const api = await ApiClient.fromConfig(config, flags.token, flags.url);
    proof = await api.get<ConsistencyProofFile>(`/v1/ledger/consistency?old=${oldNote.split('\n')[1]}&new=${newNote.split('\n')[1]}`);
    Object.assign(proof, { old_checkpoint: oldNote, new_checkpoint: newNote });
  }
  if (flags.key !== undefined) verifyConsistencyProofFile(proof, readKey(flags.key));
  emit(proof, flags);
  return 0;
}

/** Offline: needs only the proof, a checkpoint and the public key. */
export async function verifyProofCommand(flags: LedgerFlags): Promise<number> {
  if (flags.proof === undefined || flags.key === undefined) throw new UsageError('verify-proof needs --proof FILE and --key KEY (the ledger-key output, or a file holding it)');
  const proof = JSON.parse(readFileSync(flags.proof, 'utf8')) as InclusionProofFile | ConsistencyProofFile;
  const key = readKey(flags.key);
  if (proof.format === 'agate-consistency-proof/v1') {
    const r = verifyConsistencyProofFile(proof, key);
    console.log(`OK: ${r.new.origin} at size ${r.new.size} extends size ${r.old.size} (both checkpoints signed by the given key)`);
    return 0;
  }
  const note = flags.checkpoint?.[0] === undefined ? (proof as InclusionProofFile).checkpoint : readFileSync(flags.checkpoint[0], 'utf8');
  const { checkpoint } = verifyInclusionProofFile(proof as InclusionProofFile, note, key);
  const p = proof as InclusionProofFile;
  const source = flags.checkpoint?.[0] === undefined ? 'the checkpoint inside the proof' : flags.checkpoint[0];
  console.log(`OK: event ${p.event_id} is record ${p.leaf_index + 1} of ${checkpoint.origin}, in the signed tree of ${checkpoint.size} (root ${checkpoint.root.toString('base64')}, from ${source})`);
  return 0;
}

/** `agate ledger-export`: the ledger's rows as JSON lines for tools/verify-chain.py (embedded store, Agate stopped). */
export async function ledgerExportCommand(config: AgateConfig, flags: LedgerFlags): Promise<number> {
  if (flags.out === undefined) throw new UsageError('agate ledger-export needs --out FILE');
  if (config.store.kind !== 'embedded') throw new UsageError('agate ledger-export reads the embedded store; for a ClickHouse server run the query in docs/ledger.md over its HTTP interface');
  await withStore(config, (store) => exportLedgerRows(store, resolve(flags.out!)));
  return 0;
}

export function ledgerKeyCommand(config: AgateConfig): number {
  console.log(verifierKey(ledgerSigner(config)));
  return 0;
}
