import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EmbeddedStore } from '../core/src/store/embedded.js';
import { migrate } from '../services/ledger/src/schema.js';
import { StoreExportSource } from '../services/query/src/export/store-source.js';
import { listSessions, searchCommands, sessionEvents, sessionTimeline } from '../services/query/src/queries.js';
import { migrateQuery } from '../services/query/src/schema.js';

/*
 * Query-service latencies on synthetic ledger data generated inside the embedded engine
 * (INSERT … SELECT FROM numbers(), no row passes through JS). Each session: SessionOpened, ten
 * commands with their verdict and response, SessionClosed (32 events); 500 identities, 20
 * targets, 30 days. Prints the median and p95 of each query against its target.
 */
const PER_SESSION = 32;
const DAYS = 30;
const START_MICROS = Date.UTC(2026, 0, 1) * 1000;

const TEXTS = [
  'SELECT * FROM orders WHERE id = ',
  'UPDATE accounts SET balance = balance - 1 WHERE id = ',
  'INSERT INTO audit_log (note) VALUES (',
  'DELETE FROM sessions WHERE user_id = ',
  'SELECT name, email FROM customers WHERE region = ',
];

function generateSql(events: number): string {
  const sessions = Math.floor(events / PER_SESSION);
  const step = Math.floor((DAYS * 86_400e6) / sessions);
  const texts = `[${TEXTS.map((t) => `'${t}'`).join(', ')}]`;
  // subject, target and text are filled as the ledger fills them (chain.ts recordColumns).
  return `INSERT INTO agate.ledger (chain_id, seq, event_id, event_type, session_id, time, subject, target, text, payload, body, prev_hash, hash)
    SELECT 'embedded', n + 1, event_id, event_type, sid, fromUnixTimestamp64Micro(toInt64(micros), 'UTC'),
      if(event_type IN ('SessionOpened', 'Command'), subject, ''), if(event_type IN ('SessionOpened', 'Command'), target, ''),
      if(event_type = 'Command', text, ''), '', body, '', ''
    FROM (
      SELECT number AS n, intDiv(number, ${PER_SESSION}) AS s, number % ${PER_SESSION} AS j, intDiv(j - 1, 3) AS c, (j - 1) % 3 AS k,
        toString(reinterpretAsUUID(sipHash128(s, 'session'))) AS sid,
        toString(reinterpretAsUUID(sipHash128(s, c, 'command'))) AS cid,
        multiIf(j = 0, 'SessionOpened', j = ${PER_SESSION - 1}, 'SessionClosed', k = 0, 'Command', k = 1, 'Verdict', 'Response') AS event_type,
        if(event_type = 'Command', cid, toString(reinterpretAsUUID(sipHash128(s, j, 'event')))) AS event_id,
        ${START_MICROS} + s * ${step} + j * 1500000 AS micros,
        concat('repo:acme/app-', toString(s % 500), ':ref:refs/heads/main') AS subject,
        concat('db-', toString(s % 20)) AS target,
        concat('{"issuer":"https://token.actions.githubusercontent.com","subject":"', subject, '","claims":{"repository":"acme/app-', toString(s % 500), '"}}') AS identity,
        if((s + c) % 50 = 0, 'deny', 'allow') AS decision,
        concat(arrayElement(${texts}, ((s + c) % 5) + 1), toString(n)) AS text,
        multiIf(
          event_type = 'SessionOpened', concat('{"event_id":"', event_id, '","time":', toString(micros), ',"session_id":"', sid, '","proxy_id":"proxy-1","protocol":"postgres","target":"', target, '","client_address":"10.0.', toString(s % 250), '.7:5', toString(s % 9000 + 1000), '","identity":', identity, ',"attributes":{},"type":"SessionOpened"}'),
          event_type = 'Command', concat('{"event_id":"', event_id, '","time":', toString(micros), ',"session_id":"', sid, '","proxy_id":"proxy-1","sequence":', toString(c + 1), ',"protocol":"postgres","target":"', target, '","identity":', identity, ',"text":"', text, '","parameters":[],"attributes":{},"type":"Command"}'),
          event_type = 'Verdict', concat('{"event_id":"', event_id, '","time":', toString(micros), ',"session_id":"', sid, '","command_id":"', cid, '","decision":"', decision, '","rule_id":', if(decision = 'deny', '"no-destructive-ddl"', 'null'), ',"reason":"', decision, '","source":"policy","policy_revision":"sha256:00","type":"Verdict"}'),
          event_type = 'Response', concat('{"event_id":"', event_id, '","time":', toString(micros), ',"session_id":"', sid, '","command_id":"', cid, '","status":"', if(decision = 'deny', 'refused', 'ok'), '","command_tag":"SELECT 1","rows":1,"bytes":64,"duration_us":', toString(800 + n % 5000), ',"error_code":null,"error_message":null,"type":"Response"}'),
          concat('{"event_id":"', event_id, '","time":', toString(micros), ',"session_id":"', sid, '","reason":"client terminated","commands":10,"duration_us":45000000,"type":"SessionClosed"}')
        ) AS body
      FROM numbers(${events})
    )`;
}

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const v = await fn();
  return [performance.now() - t, v];
}

function stats(ms: number[]): { median: number; p95: number } {
  const s = [...ms].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, p95: s[Math.min(s.length - 1, Math.ceil(s.length * 0.95) - 1)]! };
}

function report(name: string, targetMs: number | undefined, ms: number[], note: string): void {
  const { median, p95 } = stats(ms);
  const verdict = targetMs === undefined ? '' : median <= targetMs ? `  (target < ${targetMs} ms: met)` : `  (target < ${targetMs} ms: MISSED)`;
  console.log(`${name.padEnd(28)} median ${median.toFixed(1).padStart(8)} ms   p95 ${p95.toFixed(1).padStart(8)} ms   n=${ms.length}  ${note}${verdict}`);
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { events: { type: 'string', default: '10000000' }, runs: { type: 'string', default: '15' }, keep: { type: 'string' } } });
  const events = Number(values.events);
  const runs = Number(values.runs);
  const dir = values.keep ?? mkdtempSync(join(tmpdir(), 'agate-bench-query-'));
  const store = EmbeddedStore.open(join(dir, 'store'));
  try {
    await migrate(store);
    await migrateQuery(store);
    const n = (await store.query<{ n: string }>('SELECT count() AS n FROM agate.ledger'))[0]?.n ?? '0';
    if (Number(n) < events) {
      await store.exec('TRUNCATE TABLE agate.ledger');
      const [genMs] = await time(() => store.exec(generateSql(events)));
      await store.exec('OPTIMIZE TABLE agate.ledger FINAL');
      console.log(`generated ${events.toLocaleString('en')} events in ${(genMs / 1000).toFixed(1)} s (inside the engine)`);
    }
    const [part] = await store.query<{ rows: string; bytes: string }>("SELECT sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts WHERE database = 'agate' AND table = 'ledger' AND active");
    console.log(`ledger: ${Number(part?.rows).toLocaleString('en')} rows, ${(Number(part?.bytes) / 2 ** 20).toFixed(0)} MiB on disk\n`);
    const sessions = Math.floor(events / PER_SESSION);
    const sid = async (i: number) => (await store.query<{ s: string }>(`SELECT toString(reinterpretAsUUID(sipHash128(toUInt64(${i}), 'session'))) AS s`))[0]!.s;
    const pick = (i: number) => Math.floor(((i * 7919) % 1000) / 1000 * sessions);

    const tl: number[] = [];
    const ev: number[] = [];
    for (let i = 0; i < runs; i++) {
      const id = await sid(pick(i));
      const [ms, rows] = await time(() => sessionTimeline(store, id));
      if (rows.length !== 10) throw new Error(`timeline of ${id} has ${rows.length} commands, expected 10`);
      tl.push(ms);
      ev.push((await time(() => sessionEvents(store, id, 0, 1000)))[0]);
    }
    report('session timeline (commands)', 50, tl, 'GET /v1/sessions/{id}');
    report('session timeline (events)', 50, ev, 'GET /v1/sessions/{id}/timeline');

    const week: number[] = [];
    for (let i = 0; i < runs; i++) {
      const from = START_MICROS + (i % 20) * 86_400e6;
      const [ms, rows] = await time(() => listSessions(store, { subject: `repo:acme/app-${(i * 37) % 500}:ref:refs/heads/main`, fromMicros: from, toMicros: from + 7 * 86_400e6, limit: 1000 }));
      if (rows.length === 0) throw new Error('an identity week returned no sessions');
      week.push(ms);
    }
    report("one identity's week", 200, week, 'GET /v1/sessions?subject=&from=&to=');

    const search: number[] = [];
    const terms = ['customers where region', 'audit_log', 'balance - 1', `= ${Math.floor(events / 3)}`];
    for (let i = 0; i < Math.max(4, Math.floor(runs / 3)); i++) {
      search.push((await time(() => searchCommands(store, { text: terms[i % terms.length]!, limit: 100 })))[0]);
    }
    report('text search (top 100)', 1000, search, 'GET /v1/commands?q=');
    const rare: number[] = [];
    for (let i = 0; i < 3; i++) rare.push((await time(() => searchCommands(store, { text: 'no-such-text-anywhere', limit: 100 })))[0]);
    report('text search (no match)', 1000, rare, 'full scan of every command');

    const source = new StoreExportSource(store);
    const exportTarget = Math.min(300_000, events);
    let exported = 0;
    let bytes2 = 0;
    let after = 0;
    const t0 = performance.now();
    while (exported < exportTarget) {
      const batch = await source.read('embedded', after, 5000);
      if (batch.length === 0) break;
      for (const e of batch) bytes2 += JSON.stringify(e).length + 1;
      exported += batch.length;
      after = batch[batch.length - 1]!.metadata.sequence;
    }
    const s = (performance.now() - t0) / 1000;
    console.log(`${'OCSF export (NDJSON)'.padEnd(28)} ${Math.round(exported / s).toLocaleString('en')} events/s   (${exported.toLocaleString('en')} events, ${(bytes2 / 2 ** 20).toFixed(0)} MiB, batches of 5000, store → OCSF → NDJSON text)`);
  } finally {
    await store.close();
    if (values.keep === undefined) rmSync(dir, { recursive: true, force: true });
  }
}
