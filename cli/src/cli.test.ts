import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadConfig } from '../../core/src/config.js';
import { mintDevToken } from '../../core/src/identity/dev-issuer.js';
import { silentLogger } from '../../core/src/log.js';
import { packageRoot } from '../../core/src/package-root.js';
import { startKafka, type KafkaBroker } from '../../test/harness/kafka.js';
import { readTopic } from '../../test/harness/kafka-topic-reader.js';
import { findFreePort, startPostgres, type PostgresServer } from '../../test/harness/postgres.js';
import { run } from '../../test/harness/proc.js';
import { sqlEscapeCorpus } from '../../test/harness/sql-escape-corpus.js';
import { ocsfErrors } from '../../test/harness/ocsf-validator.js';
import { startEmbedded, type RunningAgate } from './components.js';

/*
 * The analyst commands of the real `agate` binary (sql, replay, export) against an embedded Agate
 * in front of a real PostgreSQL, with a session made by node-postgres through the proxy; export
 * also to a real Kafka broker.
 */
const cli = suite('agate sql / replay / export');
/** A secret the audit set's detectors know (an AWS access key id). */
const AWS_KEY = 'AKIAIOSFODNN7EXAMPLE';
const ctx = {} as { kafka: KafkaBroker; pg: PostgresServer; agate: RunningAgate; dir: string; config: string; hec: Server; hecUrl: string; hecBodies: string[]; hecAuth: string[] };

const agate = (...args: string[]) => run(process.execPath, [join(packageRoot(), 'bin/agate.js'), ...args, '--config', ctx.config], { timeoutMs: 60_000, env: { ...process.env, AGATE_HEC_TOKEN: 'hec-secret' } });

cli.before(async () => {
  [ctx.pg, ctx.kafka] = await Promise.all([startPostgres(), startKafka()]);
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-cli-'));
  ctx.config = join(ctx.dir, 'agate.yaml');
  writeFileSync(ctx.config, `
data_dir: ${ctx.dir}
identity: { dev_issuer: { enabled: true } }
bus: { fsync: false }
proxy: { postgres: { listen: 127.0.0.1:${await findFreePort()} } }
targets:
  - { name: appdb, protocol: postgres, upstream: { host: 127.0.0.1, port: ${ctx.pg.port}, database: appdb, user: ${ctx.pg.users.scram.user}, password: { value: "${ctx.pg.users.scram.password}" } } }
policy:
  default: allow
  rules: [{ id: no-drop, action: deny, message: no dropping, match: { sql: { statements: [DropStmt] } } }]
query: { listen: 127.0.0.1:${await findFreePort()}, roles: { default_role: none } }
`);
  ctx.agate = await startEmbedded(loadConfig(ctx.config), silentLogger);
  const token = await mintDevToken(ctx.dir, { subject: 'repo:acme/app', audience: 'agate', ttlSeconds: 300 });
  const client = new pg.Client({ host: '127.0.0.1', port: ctx.agate.postgres.port, database: 'appdb', user: 'agent', password: token });
  await client.connect();
  await client.query('SELECT * FROM items');
  await client.query('DROP TABLE items').catch(() => undefined);
  // A notification from a writer outside Agate: recorded as a Notification (no command of its own).
  await client.query('LISTEN jobs');
  const notified = new Promise<void>((resolve) => client.once('notification', () => resolve()));
  await ctx.pg.psql(`NOTIFY jobs, 'deploy key ${AWS_KEY}'`);
  await notified;
  await client.end();
  ctx.hecBodies = [];
  ctx.hecAuth = [];
  ctx.hec = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      ctx.hecBodies.push(body);
      ctx.hecAuth.push(String(req.headers.authorization));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"text":"Success","code":0}');
    });
  });
  await new Promise<void>((r) => ctx.hec.listen(0, '127.0.0.1', r));
  ctx.hecUrl = `http://127.0.0.1:${(ctx.hec.address() as AddressInfo).port}`;
  for (let i = 0; i < 150; i++) {
    const r = await agate('sql', "SELECT count() AS n FROM agate.responses", '--format', 'csv');
    // The session's close follows its notification in session order, so once it is in the ledger, so is the notification.
    const closed = await agate('sql', 'SELECT count() AS n FROM agate.sessions WHERE closed_at IS NOT NULL', '--format', 'csv');
    if (r.stdout.trim().split('\n')[1] === '3' && closed.stdout.trim().split('\n')[1] === '1') return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('the session was not recorded');
});

cli.after(async () => {
  await ctx.agate?.stop();
  await new Promise((r) => (ctx.hec ? (ctx.hec.closeAllConnections(), ctx.hec.close(r)) : r(undefined)));
  await ctx.pg?.stop();
  await ctx.kafka?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

cli('agate sql prints a table, and a write is refused', async () => {
  const r = await agate('sql', 'SELECT text FROM agate.commands ORDER BY seq');
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^TEXT\n/);
  assert.match(r.stdout, /SELECT \* FROM items\nDROP TABLE items/);
  const w = await agate('sql', 'DROP TABLE agate.ledger');
  assert.is(w.code, 1);
  assert.match(w.stderr, /SQL_REFUSED/);
});

cli('agate sql refuses every escape in the corpus and prints nothing secret', async () => {
  const secret = join(ctx.dir, 'canary-secret.txt');
  const canary = `canary-${process.pid}-${Date.now()}`;
  writeFileSync(secret, canary, { mode: 0o600 });
  for (const { family, sql, names } of sqlEscapeCorpus(secret)) {
    const r = await agate('sql', sql);
    assert.is(r.code, 1, `${family}: ${r.stdout}`);
    assert.not.ok((r.stdout + r.stderr).includes(canary), family);
    assert.match(r.stderr, /SQL_REFUSED/, family);
    assert.ok(r.stderr.includes(names), `${family}: ${r.stderr}`);
  }
});

cli('agate replay shows each statement with its verdict and result', async () => {
  const id = (await agate('sql', 'SELECT session_id FROM agate.sessions', '--format', 'csv')).stdout.trim().split('\n')[1]!;
  const r = await agate('replay', id);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`session ${id}  postgres://appdb`));
  assert.match(r.stdout, /\+ +\d+\.\d{3}s  > SELECT \* FROM items\n +allowed\n +< SELECT 3, 3 rows in [\d.]+ ms/);
  assert.match(r.stdout, /> DROP TABLE items\n +DENY by rule no-drop: no dropping\n +< refused/);
  // Masked with the audit set, as recorded.
  assert.match(r.stdout, /> LISTEN jobs\n +allowed\n +< LISTEN, 0 rows in [\d.]+ ms\n\n\+ +\d+\.\d{3}s  ! notification on jobs: deploy key \[masked:cloud_access_key\]/);
  assert.not.ok(r.stdout.includes(AWS_KEY));
});

cli('agate export to an NDJSON file resumes from its saved position', async () => {
  const out = join(ctx.dir, 'events.ndjson');
  const state = join(ctx.dir, 'export-state.json');
  const first = await agate('export', '--format', 'ocsf', '--to', 'ndjson', out, '--state', state);
  assert.is(first.code, 0, first.stderr);
  const events = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(events.map((e) => e.class_uid), [3002, 6005, 6005, 6005]);
  assert.equal(await ocsfErrors(events), {}, 'valid OCSF 1.3.0');
  const again = await agate('export', '--format', 'ocsf', '--to', 'ndjson', out, '--state', state);
  assert.is(again.code, 0);
  assert.is(readFileSync(out, 'utf8').trim().split('\n').length, 4, 'nothing exported twice (the notification is not exported)');
});

cli('agate export to a Splunk HEC endpoint sends {"event": …} with the Splunk token', async () => {
  const r = await agate('export', '--format', 'ocsf', '--to', 'hec', ctx.hecUrl, '--state', join(ctx.dir, 'hec-state.json'));
  assert.is(r.code, 0, r.stderr);
  const lines = ctx.hecBodies.join('\n').split('\n').map((l) => JSON.parse(l));
  assert.is(lines.length, 4);
  assert.ok(lines.every((l) => typeof l.event.class_uid === 'number' && l.sourcetype === 'ocsf'));
  assert.equal([...new Set(ctx.hecAuth)], ['Splunk hec-secret']);
  assert.not.match(r.stderr, /hec-secret/);
});

cli('agate export to a Kafka topic publishes each OCSF event once, keyed by session, and resumes', async () => {
  const state = join(ctx.dir, 'kafka-state.json');
  const r = await agate('export', '--format', 'ocsf', '--to', 'kafka', 'agate.ocsf', '--brokers', ctx.kafka.bootstrap, '--state', state);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /4 OCSF events delivered to kafka:agate\.ocsf/);
  const again = await agate('export', '--format', 'ocsf', '--to', 'kafka', 'agate.ocsf', '--brokers', ctx.kafka.bootstrap, '--state', state);
  assert.match(again.stderr, /0 OCSF events delivered/);
  const records = await readTopic(ctx.kafka.bootstrap, 'agate.ocsf', (rs) => rs.length === 4);
  const got = records.map((r) => ({ key: r.key, event: JSON.parse(r.value.toString('utf8')) as { class_uid: number; metadata: { correlation_uid: string } } }));
  assert.equal(got.map((g) => g.event.class_uid), [3002, 6005, 6005, 6005]);
  for (const g of got) assert.is(g.key, g.event.metadata.correlation_uid);
  assert.equal(await ocsfErrors(got.map((g) => g.event)), {}, 'valid OCSF 1.3.0');
});

cli.run();
