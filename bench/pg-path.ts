import { loadavg } from 'node:os';
import { BUILTIN_MASK_SET } from '../core/src/config.js';
import { initSqlParser } from '../core/src/sql/analyze.js';
import { EventCodec, freezeEvent } from '../schemas/src/codec.js';
import type { AgateEvent } from '../schemas/src/events.js';
import { SAMPLES } from '../schemas/src/samples.js';
import type { Column } from '../services/ingress-proxy/src/pg/backend-decode.js';
import { carriesMaskedColumn } from '../services/ingress-proxy/src/pg/masking/derived-columns.js';
import { MaskReadings } from '../services/ingress-proxy/src/pg/masking/mask-readings.js';
import { statementSecrets } from '../services/ingress-proxy/src/pg/masking/statement-secrets.js';
import { StatementResult } from '../services/ingress-proxy/src/pg/result-recorder.js';
import { Masker } from '../services/ingress-proxy/src/masking/masker.js';
import { recordColumns } from '../services/ledger/src/chain.js';

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
  const i = args.indexOf('--calls');
  const calls = i === -1 ? 30_000 : Number(args[i + 1]);
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
  for (const type of ['Command', 'Verdict', 'Response'] as const) {
    const event = SAMPLES[type] as AgateEvent;
    rows.push([`${type}: frozen and Avro-encoded for the bus (a fresh copy each call)`, () => codec.encode(freezeEvent(structuredClone(event)))]);
    rows.push([`${type}: its copy alone (subtract from the line above)`, () => structuredClone(event)]);
    rows.push([`${type}: the ledger's columns (JSON body)`, () => recordColumns(event)]);
  }
  console.log(`\nCPU per call, ${calls} calls each after a warm-up (${new Date().toISOString()}, load average ${loadavg()[0]!.toFixed(1)})\n`);
  console.log('| piece of one statement\'s path | CPU µs per call |');
  console.log('|---|---:|');
  for (const [label, f] of rows) console.log(`| ${label} | ${cpuPerCall(f, calls).toFixed(2)} |`);
}
