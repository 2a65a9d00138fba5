import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILTIN_MASK_SET } from '../core/src/config.js';
import { initSqlParser } from '../core/src/sql/analyze.js';
import { EventCodec, freezeEvent } from '../schemas/src/codec.js';
import { nowMicros, type AgateEvent, type Command, type Verdict } from '../schemas/src/events.js';
import { LocalBus } from '../core/src/bus/local-bus.js';
import { silentLogger } from '../core/src/log.js';
import { SAMPLES } from '../schemas/src/samples.js';
import type { Column } from '../services/ingress-proxy/src/pg/backend-decode.js';
import { carriesMaskedColumn } from '../services/ingress-proxy/src/pg/masking/derived-columns.js';
import { MaskReadings } from '../services/ingress-proxy/src/pg/masking/mask-readings.js';
import { statementSecrets } from '../services/ingress-proxy/src/pg/masking/statement-secrets.js';
import { StatementResult } from '../services/ingress-proxy/src/pg/result-recorder.js';
import { Masker } from '../services/ingress-proxy/src/masking/masker.js';
import { recordColumns } from '../services/ledger/src/chain.js';
import { writeJsonBody } from '../services/ledger/src/json-body.js';
import { RowBinaryWriter } from '../core/src/store/row-binary.js';
import { LEDGER_LINGER_MS } from '../services/ledger/src/ledger.js';
import { InstrumentedBus } from '../core/src/ops/instrumented-bus.js';
import { Readiness } from '../core/src/ops/readiness.js';
import { decide } from '../services/ingress-proxy/src/decide.js';
import { SessionEvents } from '../services/ingress-proxy/src/session-events.js';
import { readOptions } from './options.js';
import { SqlAnalysisCache } from '../core/src/sql/analyze.js';
import { sqlFacts, type SqlFacts } from '../core/src/sql/facts.js';
import { storedCode, storedCodeOf } from '../services/ingress-proxy/src/pg/stored-code.js';

/*
 * CPU per call of the pieces of one PostgreSQL statement's path through `agate start`, each
 * measured alone in this process with process.cpuUsage(): the figures of issue 21's steps that
 * a whole-system run on the shared two-core machine cannot resolve (its statement rate, and so
 * its CPU per statement, moves more with the machine's load than with a 15 µs change). Not a
 * replacement for `npm run bench -- pg`, which measures the whole process.
 */

const PREPARED = 'SELECT abalance FROM pgbench_accounts WHERE aid = $1';
const UPDATE = 'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2';

/** CPU µs per call of `f`, after a warm-up. */
function cpuPerCall(f: (i: number) => unknown, calls: number): number {
  for (let i = 0; i < Math.min(calls, 5_000); i++) f(i);
  const start = process.cpuUsage();
  for (let i = 0; i < calls; i++) f(i);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / calls;
}

/** A DataRow of one text column. */
function dataRow(text: string): Buffer {
  const value = Buffer.from(text);
  const frame = Buffer.alloc(11 + value.length);
  frame[0] = 0x44; // D
  frame.writeInt32BE(frame.length - 1, 1);
  frame.writeInt16BE(1, 5);
  frame.writeInt32BE(value.length, 7);
  value.copy(frame, 11);
  return frame;
}

/** `npm run bench -- pg-path [--calls N]` */
export async function run(args: string[]): Promise<void> {
  const { calls } = readOptions(args, { numbers: { calls: 30_000 } });
  await initSqlParser();
  const audit = new Masker('default', BUILTIN_MASK_SET);
  const readings = new MaskReadings();
  const options = { sampleRows: 10, valueChars: 256, audit, readings };
  const command = { ...SAMPLES.Command, text: PREPARED };
  const row = dataRow('-4711');
  const columns: Column[] = [{ name: 'abalance', tableOid: 0, columnAttr: 0, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 }];
  const simple = (n: number) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${(n * 7919) % 1_000_000};`;
  const codec = new EventCodec();
  const rows: [string, (n: number) => unknown][] = [
    ['a 1-row result recorded: StatementResult built, row taken, Response made (pgbench -S)', () => {
      const r = new StatementResult(command, options, undefined, () => columns);
      r.row(row);
      return r.response({ status: 'ok', command_tag: 'SELECT 1' });
    }],
    ['whether a result carries a masked column, read afresh (before: for every result)', () => carriesMaskedColumn(PREPARED, audit)],
    ['the same, remembered (MaskReadings.carries), prepared text', () => readings.carries(PREPARED, audit)],
    ['the same, remembered by shape, a new number in every simple-protocol text', (n) => readings.carries(simple(n), audit)],
    ['what an UPDATE assigns to a masked column, read afresh (before: for every Command)', () => statementSecrets(UPDATE, audit)],
    ['the same, remembered (MaskReadings.secrets)', () => readings.secrets(UPDATE, audit)],
  ];
  // What a session does per statement for stored code (session.ts #markStoredCode) once the
  // catalog was read: nothing more when the target has none; else the text read (by shape,
  // cached) and its names looked up, here among 200 objects none of which it reaches.
  const none = storedCode([], []);
  const some = storedCode(Array.from({ length: 200 }, (_, i) => ['write', 'public', `t${i}`, `trigger x on public.t${i} runs public.f${i}`]), []);
  const storedReads = new SqlAnalysisCache(256);
  const storedFacts = (text: string): SqlFacts[] => {
    const a = storedReads.analyzeShape(text);
    if (!a.ok) return [];
    return a.statements.map((st) => sqlFacts(st)).flatMap((f) => (f.ok ? [f.facts] : []));
  };
  rows.push(['stored code, a target with none: the statement is not read (storedCodeOf on an empty reading)', () => none.empty || storedCodeOf(none, [])]);
  rows.push(['stored code, a target with 200 objects: a simple-protocol text read by shape (new number each call) and looked up', (n) => storedCodeOf(some, storedFacts(simple(n)))]);
  for (const type of ['Command', 'Verdict', 'Response'] as const) {
    const event = SAMPLES[type] as AgateEvent;
    rows.push([`${type}: frozen and Avro-encoded for the bus (a fresh copy each call)`, () => codec.encode(freezeEvent(structuredClone(event)))]);
    rows.push([`${type}: its copy alone (subtract from the line above)`, () => structuredClone(event)]);
    rows.push([`${type}: the ledger's columns (JSON body)`, () => recordColumns(event)]);
  }
  // A statement's three events as a session makes them (a frozen identity shared by the
  // session), frozen as the bus freezes them: the encode and the ledger's JSON body each take all
  // three types in turn, as they do in `agate start`.
  const identity = freezeEvent({ ...SAMPLES.Command, identity: structuredClone(SAMPLES.Command.identity) }).identity;
  const statements = statementsOf(identity);
  // A CI token's identity: ~25 claims, most of a Command's JSON (the sample has 3).
  const ciClaims = { ...SAMPLES.Command.identity.claims };
  for (let i = Object.keys(ciClaims).length; i < 25; i++) ciClaims[`claim_${i}`] = `value ${i} ${'x'.repeat(i)}`;
  const ciStatements = statementsOf(freezeEvent({ ...SAMPLES.Command, identity: { ...SAMPLES.Command.identity, claims: ciClaims } }).identity);
  let body = new RowBinaryWriter();
  rows.push(['a statement\'s Command, Verdict and Response Avro-encoded (frozen already; the three types in turn)', (n) => {
    for (const e of statements[n % statements.length]!) codec.encode(e);
  }]);
  rows.push(['their ledger JSON bodies written into a row (writeJsonBody; the three types in turn)', (n) => {
    if (body.length > 1 << 20) body = new RowBinaryWriter();
    for (const e of statements[n % statements.length]!) writeJsonBody(body, e);
  }]);
  rows.push(['the same with a 25-claim identity (a CI token\'s)', (n) => {
    if (body.length > 1 << 20) body = new RowBinaryWriter();
    for (const e of ciStatements[n % ciStatements.length]!) writeJsonBody(body, e);
  }]);
  console.log(`\nCPU per call, ${calls} calls each after a warm-up (${new Date().toISOString()}, load average ${loadavg()[0]!.toFixed(1)})\n`);
  console.log('| piece of one statement\'s path | CPU µs per call |');
  console.log('|---|---:|');
  for (const [label, f] of rows) console.log(`| ${label} | ${cpuPerCall(f, calls).toFixed(2)} |`);
  for (const sessions of [1, 8]) {
    const bus = await busPerStatement(sessions, calls, false);
    console.log(`| the embedded bus's share of a statement, ${sessions} session${sessions === 1 ? '' : 's'} at a time: Command + inline Verdict appended, Response appended, agate start's consumer groups (fsync off); process / main thread | ${bus.process.toFixed(2)} / ${bus.main.toFixed(2)} |`);
  }
  for (const sessions of [1, 8]) {
    const bus = await busPerStatement(sessions, calls, true);
    console.log(`| the same as a proxy session asks it (decide() through the instrumented bus, the Response through SessionEvents), ${sessions} session${sessions === 1 ? '' : 's'} at a time; process / main thread | ${bus.process.toFixed(2)} / ${bus.main.toFixed(2)} |`);
  }
}

/** A thousand statements' Command, Verdict and Response as a session makes them (sharing `identity`), frozen as the bus freezes them. */
function statementsOf(identity: Command['identity']): AgateEvent[][] {
  return Array.from({ length: 1_000 }, (_, i) => {
    const session_id = randomUUID();
    const c: Command = { ...SAMPLES.Command, event_id: randomUUID(), session_id, identity, sequence: i, attributes: {} };
    const v = { ...SAMPLES.Verdict, event_id: randomUUID(), session_id, command_id: c.event_id, decision: 'allow', rule_id: null };
    const r = { ...SAMPLES.Response, event_id: randomUUID(), session_id, command_id: c.event_id, rows: i % 7 };
    return [c, v, r].map((e) => freezeEvent(e as AgateEvent));
  });
}

/** CPU ms of this process's main thread so far (Linux). */
function mainThreadMs(): number {
  const stat = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms
}

/**
 * What the embedded bus costs one statement of `agate start`: the Command written with the
 * Verdict an inline decider returns (one append), the waiter told, then the Response written,
 * with the consumer groups `agate start` subscribes reading along (handlers that do nothing; the
 * ledger lingering as it does there). fsync off, so the disk does not set the pace; CPU µs per
 * statement of the process and of its main thread (the latter in 10 ms ticks: use many calls).
 * `asProxy`: through what a proxy session adds on top (decide() over the instrumented bus, the
 * Response through the session's SessionEvents chain), to weigh those layers against the bus.
 */
async function busPerStatement(sessions: number, statements: number, asProxy: boolean): Promise<{ process: number; main: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'agate-pg-path-bus-'));
  const bus = new LocalBus({ dir, fsync: false, logger: silentLogger, lingerMs: { ledger: LEDGER_LINGER_MS } });
  try {
    bus.decideInline({
      decide: (c: Command): Verdict[] => [{ ...SAMPLES.Verdict, event_id: randomUUID(), time: nowMicros(), session_id: c.session_id, command_id: c.event_id, decision: 'allow', mask_set: null, approval_id: null, hold_expires_at: null }],
      written: () => undefined,
    });
    const groups: [string, AgateEvent['type'][]][] = [
      ['terminations', ['SessionTerminationRequested']], ['policy', ['ApprovalDecision']], ['session-ends', ['SessionClosed']],
      ['console', ['SessionOpened', 'ApprovalRequested', 'Verdict']], ['ledger', ['SessionOpened', 'Command', 'Verdict', 'Response', 'SessionClosed']],
    ];
    // The console takes only hold verdicts (fresh-holds.ts): the others do not wake it.
    const accept = (e: AgateEvent) => e.type !== 'Verdict' || e.decision === 'hold';
    for (const [group, types] of groups) await bus.subscribe({ group, types, handler: async () => undefined, maxBatch: group === 'ledger' ? 20_000 : undefined, accept: group === 'console' ? accept : undefined });
    // As `agate start` wraps it for the proxies (cli/src/components.ts), when asked.
    const outer = asProxy ? new InstrumentedBus(bus, new Readiness()) : bus;
    const session = async (n: number) => {
      const session_id = randomUUID();
      const events = new SessionEvents(outer, silentLogger);
      for (let i = 0; i < n; i++) {
        const command: Command = { ...SAMPLES.Command, event_id: randomUUID(), time: nowMicros(), session_id, attributes: {} };
        const response = { ...SAMPLES.Response, event_id: randomUUID(), time: nowMicros(), session_id, command_id: command.event_id };
        if (asProxy) {
          if ((await decide(command, { bus: outer, verdictTimeoutMs: 10_000, events, log: silentLogger })).kind !== 'run') throw new Error('not allowed');
          void events.emitLogged(response);
          continue;
        }
        const outcome = await bus.requestVerdict(command, 10_000);
        if (outcome.kind !== 'verdict') throw new Error('no verdict');
        void bus.publish(response);
      }
      await events.drained();
    };
    const all = (n: number) => Promise.all(Array.from({ length: sessions }, () => session(Math.ceil(n / sessions))));
    await all(Math.min(statements, 5_000));
    const cpu = process.cpuUsage();
    const main = mainThreadMs();
    await all(statements);
    const used = process.cpuUsage(cpu);
    return { process: (used.user + used.system) / statements, main: ((mainThreadMs() - main) * 1000) / statements };
  } finally {
    await bus.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
