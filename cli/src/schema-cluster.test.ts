import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Bus } from '../../core/src/bus/bus.js';
import { AgateError, ErrorCode } from '../../core/src/errors.js';
import { silentLogger } from '../../core/src/log.js';
import { clusterDdl, withoutOnCluster } from '../../core/src/store/cluster-ddl.js';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import { EventCodec } from '../../schemas/src/codec.js';
import type { AgateEvent } from '../../schemas/src/events.js';
import { SAMPLES } from '../../schemas/src/samples.js';
import { LedgerService } from '../../services/ledger/src/ledger.js';
import { generateSignerKey, parseSignerKey, parseVerifierKey, verifierKey } from '../../services/ledger/src/note.js';
import { migrate } from '../../services/ledger/src/schema.js';
import { verifyChain } from '../../services/ledger/src/verify.js';
import { migrateQuery } from '../../services/query/src/schema.js';
import { SHARDING_KEYS, storeDdl } from './schema-command.js';

/*
 * `agate schema --cluster`: every statement is checked by the embedded engine's parser as
 * printed, then run on an engine configured as a one-shard cluster, so the Distributed tables
 * and the materialized views on the local tables are real. Two things one in-process engine
 * cannot do are taken out for the run, not for the parse: ON CLUSTER (no distributed DDL queue)
 * and replication (its in-memory Keeper leaves replicated tables read-only after the first
 * insert), so a local table runs on the engine its replicated one wraps. A ledger then appends
 * through the Distributed tables and its chain verifies.
 */
const CLUSTER = 'agate_test';
const dir = mkdtempSync(join(tmpdir(), 'agate-schema-cluster-'));
const configFile = join(dir, 'cluster.xml');
writeFileSync(configFile, `<clickhouse>
  <tcp_port>9000</tcp_port>
  <remote_servers><${CLUSTER}><shard><replica><host>127.0.0.1</host><port>9000</port></replica></shard></${CLUSTER}></remote_servers>
  <macros><shard>01</shard><replica>r1</replica></macros>
</clickhouse>
`);
const store = EmbeddedStore.open(join(dir, 'store'), { configFile });
const statements = clusterDdl(storeDdl(), { cluster: CLUSTER, shardingKeys: SHARDING_KEYS });

const cluster = suite('agate schema --cluster');
cluster.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

cluster('every statement parses with its ON CLUSTER clause', async () => {
  for (const sql of statements) {
    const [row] = await store.query<{ f: string }>('SELECT formatQuery({q:String}) AS f', { q: sql });
    assert.ok(row!.f.includes(`ON CLUSTER ${CLUSTER}`), sql.slice(0, 80));
  }
});

cluster('each MergeTree table is a replicated local table with its own Keeper path and a Distributed table of the same name', () => {
  const locals = statements.filter((s) => /ENGINE = Replicated\w*MergeTree\(/.test(s));
  assert.equal(locals.map((s) => /agate\.(\w+)_local/.exec(s)![1]).sort(), Object.keys(SHARDING_KEYS).sort());
  const paths = locals.map((s) => /Replicated\w*MergeTree\('([^']+)'/.exec(s)![1]);
  assert.is(new Set(paths).size, paths.length);
  for (const [table, key] of Object.entries(SHARDING_KEYS)) {
    assert.ok(statements.includes(`CREATE TABLE IF NOT EXISTS agate.${table} ON CLUSTER ${CLUSTER} AS agate.${table}_local\n  ENGINE = Distributed(${CLUSTER}, agate, ${table}_local, ${key})`), table);
  }
  for (const mv of statements.filter((s) => s.includes('MATERIALIZED VIEW'))) {
    assert.match(mv, / TO agate\.\w+_local AS /);
    assert.match(mv, /FROM agate\.ledger_local /);
  }
  assert.throws(() => clusterDdl(storeDdl(), { cluster: 'c', shardingKeys: {} }), (e: unknown) => e instanceof AgateError && e.code === ErrorCode.CONFIG_INVALID);
  assert.throws(() => clusterDdl(storeDdl(), { cluster: 'x; DROP', shardingKeys: SHARDING_KEYS }), (e: unknown) => e instanceof AgateError && e.code === ErrorCode.CONFIG_INVALID);
});

cluster('the statements run on a one-shard cluster; the services leave the schema alone; a ledger appends through it and its chain verifies', async () => {
  // What the docs ask of Agate's ClickHouse user's profile (the engine reads no users' profiles).
  await store.exec('SET distributed_foreground_insert = 1');
  const unreplicated = (sql: string) => sql.replace(/Replicated(\w*MergeTree)\('[^']*', '[^']*'\)/, '$1');
  for (const sql of statements) await store.exec(unreplicated(withoutOnCluster(sql)));
  const engines = Object.fromEntries((await store.query<{ name: string; engine: string }>("SELECT name, engine FROM system.tables WHERE database = 'agate'")).map((r) => [r.name, r.engine]));
  assert.is(engines.ledger, 'Distributed');
  assert.is(engines.ledger_local, 'MergeTree');
  assert.is(engines.q_session_stats_local, 'AggregatingMergeTree');
  await migrate(store);
  await migrateQuery(store);

  const codec = new EventCodec();
  const signer = parseSignerKey(generateSignerKey('agate.test/cluster'));
  const bus = { publish: async () => {}, subscribe: async () => ({ close: async () => {} }) } as unknown as Bus;
  const ledger = new LedgerService({ bus, store, codec, chainId: 'c1', logger: silentLogger, signer, checkpoints: { everyEvents: 10, everyMs: 60_000, sinks: [] } });
  await ledger.start();
  const events = Array.from({ length: 30 }, (_, i) => ({ ...Object.values(SAMPLES)[i % 6]!, event_id: randomUUID() }) as AgateEvent);
  for (let i = 0; i < 30; i += 10) await ledger.append(events.slice(i, i + 10));
  await ledger.checkpoint();
  await ledger.stop();
  const [local] = await store.query<{ n: string }>("SELECT count() AS n FROM agate.ledger_local WHERE chain_id = 'c1'");
  assert.is(Number(local!.n), 30, 'the rows are on the shard when the insert returns');
  const r = await verifyChain(store, codec, 'c1', { verifiers: [parseVerifierKey(verifierKey(signer))] });
  assert.ok(r.ok, JSON.stringify(r.failure));
  assert.is(r.records, 30);
  const opened = events.filter((e) => e.type === 'SessionOpened').length;
  const [sessions] = await store.query<{ n: string }>('SELECT count() AS n FROM agate.sessions');
  assert.ok(Number(sessions!.n) > 0 && Number(sessions!.n) <= opened, 'the materialized views filled the session tables on the shard');
});

cluster('the ledger refuses a cluster whose inserts into Distributed tables are queued', async () => {
  await store.exec('SET distributed_foreground_insert = 0');
  try {
    await migrate(store);
    assert.unreachable('migrate accepted queued Distributed inserts');
  } catch (err) {
    assert.instance(err, AgateError);
    assert.is((err as AgateError).code, ErrorCode.STORE_FAILED);
  } finally {
    await store.exec('SET distributed_foreground_insert = 1');
  }
});

cluster.run();
