import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { startClickHouseServer, type ClickHouseServer } from '../../../test/harness/clickhouse-server.js';
import { startClickHouseHttpDouble, type ClickHouseHttpDouble } from '../../../test/harness/clickhouse-http-double.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import type { Bus } from '../bus/bus.js';
import { silentLogger } from '../log.js';
import { LedgerService } from '../../../services/ledger/src/ledger.js';
import { migrate } from '../../../services/ledger/src/schema.js';
import { verifyChain } from '../../../services/ledger/src/verify.js';
import { AgateError } from '../errors.js';
import { ClickHouseStore } from './clickhouse.js';
import { RowBinaryWriter } from './row-binary.js';
import { mkdtempSync, readFileSync } from 'node:fs';
import { makeTestCa, type TestCa } from '../../../test/harness/test-ca.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateSigner } from '../../../services/ledger/src/keys.js';

/*
 * The server store's transport against Debian's real clickhouse-server (18.16), and the full
 * ledger schema and queries through the same client against the modern engine behind the named
 * HTTP test double (no modern server binary can be installed here).
 */
/** Strings a text format would have to escape, non-ASCII, and one whose length takes two LEB128 bytes. */
const NAMES = ['plain', 'tab\there', 'new\nline\r', "back\\slash 'quote' \"dq\"", 'nul\0byte', 'ünï 🚀', 'x'.repeat(300), ''];

const real = suite('ClickHouseStore against clickhouse-server 18.16');
let server: ClickHouseServer;
let store: ClickHouseStore;
let ca: TestCa;
const ready = (async () => {
  ca = await makeTestCa(mkdtempSync(join(tmpdir(), 'agate-ch-tls-')));
  server = await startClickHouseServer(undefined, ca.server);
  store = new ClickHouseStore({ url: server.url, username: 'default', password: '' });
})();
real.after(async () => {
  await store?.close();
  await server?.close();
});

real('ping, DDL, JSON inserts and queries go through the HTTP transport', async () => {
  await ready;
  await store.ping();
  await store.exec('CREATE TABLE t (id UInt64, name String) ENGINE = MergeTree ORDER BY id');
  await store.insert('t', [{ id: 2, name: "o'hara" }, { id: 1, name: 'ünï' }]);
  const rows = await store.query<{ id: string; name: string }>('SELECT id, name FROM t ORDER BY id');
  assert.equal(rows.map((r) => [Number(r.id), r.name]), [[1, 'ünï'], [2, "o'hara"]]);
});

real('a RowBinary insert goes to the server as the request body and reads back byte for byte', async () => {
  await ready;
  await store.exec('CREATE TABLE rb (id UInt64, name String, digest FixedString(32)) ENGINE = MergeTree ORDER BY id');
  const w = new RowBinaryWriter(64);
  NAMES.forEach((name, i) => w.uint64(i).string(name).fixed(Buffer.alloc(32, i)));
  await store.insertRowBinary('rb', ['id', 'name', 'digest'], 'id UInt64, name String, digest FixedString(32)', w.finish());
  assert.equal(await store.queryRowBinary('SELECT id, name, digest FROM rb ORDER BY id'), w.finish());
});

real('over HTTPS (store.tls): the server is verified against the configured CA, and an unknown CA is refused', async () => {
  await ready;
  const secure = new ClickHouseStore({ url: server.httpsUrl!, username: 'default', password: '', tls: { ca: readFileSync(ca.ca) } });
  try {
    await secure.ping();
    assert.equal(await secure.query<{ x: number }>('SELECT 1 AS x'), [{ x: 1 }]);
  } finally {
    await secure.close();
  }
  const other = await makeTestCa(mkdtempSync(join(tmpdir(), 'agate-ch-tls-other-')));
  const untrusting = new ClickHouseStore({ url: server.httpsUrl!, username: 'default', password: '', tls: { ca: readFileSync(other.ca) } });
  try {
    const err = await untrusting.ping().then(() => undefined, (e: unknown) => e as AgateError);
    assert.ok(err !== undefined, 'a server certificate the CA did not sign is refused');
  } finally {
    await untrusting.close();
  }
});

real('server errors are typed, retriable, and name the operation', async () => {
  await ready;
  try {
    await store.query('SELECT * FROM no_such_table');
    assert.unreachable();
  } catch (err) {
    const e = err as { code: string; retriable: boolean; message: string };
    assert.is(e.code, 'STORE_FAILED');
    assert.ok(e.retriable);
    assert.match(e.message, 'no_such_table');
  }
});

real('the ledger migration refuses a server too old for its schema, saying which version it needs', async () => {
  await ready;
  try {
    await migrate(store);
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, /ClickHouse 18\.16\.\d+ is too old .* needs 25\.8 or newer/);
  }
});

real('an unreachable server fails ping clearly', async () => {
  const nowhere = new ClickHouseStore({ url: 'http://127.0.0.1:9', username: 'default', password: '' });
  try {
    await nowhere.ping();
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, 'http://127.0.0.1:9');
  } finally {
    await nowhere.close();
  }
});

real.run();

const modern = suite('ClickHouseStore: the full ledger on the modern engine (HTTP test double)');
let double: ClickHouseHttpDouble;
let viaHttp: ClickHouseStore;
const modernReady = (async () => {
  double = await startClickHouseHttpDouble();
  viaHttp = new ClickHouseStore({ url: double.url, username: 'default', password: '' });
})();
modern.after(async () => {
  await viaHttp?.close();
  await double?.close();
});

modern('migrate, append with dedupe, recover the head, verify — all through @clickhouse/client', async () => {
  await modernReady;
  const codec = new EventCodec();
  const noBus = {} as Bus;
  const signer = loadOrCreateSigner(join(mkdtempSync(join(tmpdir(), 'agate-key-')), 'k'), 'agate.test/ledger');
  const ledger = new LedgerService({ bus: noBus, store: viaHttp, codec, logger: silentLogger, signer, chainId: 'agate.events-0' });
  await migrate(viaHttp);
  const batch = Object.values(SAMPLES).map((e) => ({ ...e, event_id: randomUUID() }));
  await ledger.append(batch, 'agate.events-0');
  await ledger.append(batch, 'agate.events-0');
  const report = await verifyChain(viaHttp, codec, 'agate.events-0');
  assert.ok(report.ok, JSON.stringify(report.failure));
  assert.is(report.records, batch.length);
  const fresh = new LedgerService({ bus: noBus, store: viaHttp, codec, logger: silentLogger, signer, chainId: 'agate.events-0' });
  await fresh.chain('agate.events-0');
  assert.equal(fresh.head, ledger.head);
});

modern('a chain two ledger instances may write (a Kafka partition): inserts claimed with a deduplication token through the server path', async () => {
  await modernReady;
  const codec = new EventCodec();
  const signer = loadOrCreateSigner(join(mkdtempSync(join(tmpdir(), 'agate-key-')), 'k'), 'agate.test/ledger');
  const [a, b] = [0, 1].map(() => new LedgerService({ bus: {} as Bus, store: viaHttp, codec, logger: silentLogger, signer, chainId: 'unused' }));
  await migrate(viaHttp);
  const batch = () => Object.values(SAMPLES).map((e) => ({ ...e, event_id: randomUUID() }));
  await a!.append(batch(), 'agate.events-7', undefined, undefined, 1);
  await b!.append(batch(), 'agate.events-7', undefined, undefined, 1);
  const moved = await a!.append(batch(), 'agate.events-7', undefined, undefined, 1).then(() => undefined, (err: unknown) => err);
  assert.is((moved as AgateError | undefined)?.code, 'LEDGER_CHAIN_MOVED', 'a stale head is refused');
  await a!.append(batch(), 'agate.events-7', undefined, undefined, 1);
  const report = await verifyChain(viaHttp, codec, 'agate.events-7');
  assert.ok(report.ok, JSON.stringify(report.failure));
  assert.is(report.records, 3 * Object.keys(SAMPLES).length);
});

modern('string parameters with quotes, backslashes and tabs bind as sent (analyst SQL with a string literal runs)', async () => {
  await modernReady;
  const value = "my-agent's \\ tab\there";
  assert.equal(await viaHttp.query<{ v: string }>('SELECT {v:String} AS v', { v: value }), [{ v: value }]);
  const q = "SELECT count() AS n FROM system.one WHERE 'my-agent' = 'my-agent'";
  assert.equal(await viaHttp.query<{ q: string }>('SELECT formatQuerySingleLine({q:String}) AS q', { q }), [{ q }]);
});

const RB_STRUCTURE = "tag String, id UInt64, name String, digest FixedString(32), at DateTime64(6, 'UTC')";

/** RowBinary rows in RB_STRUCTURE's order, one per name (each with its own digest and time, one before 1970). */
function rbRows(): { payload: Buffer; expected: { id: string; name: string; tag: string; digest: string; at: string }[] } {
  const w = new RowBinaryWriter(64);
  const expected = NAMES.map((name, i) => {
    const tag = i % 2 === 0 ? 'pg' : 'ssh';
    const digest = Buffer.alloc(32, i + 1);
    const micros = i === 0 ? -1_500_000 : 1_764_000_000_000_000 + i * 1_000_001;
    w.string(tag).uint64(i).string(name).fixed(digest).int64(micros);
    return { id: String(i), name, tag, digest: digest.toString('hex').toUpperCase(), at: String(micros) };
  });
  return { payload: Buffer.from(w.finish()), expected };
}

modern('a RowBinary insert through the server path reads back equal, in its named columns, with defaults for the rest', async () => {
  await modernReady;
  await viaHttp.exec("CREATE TABLE rb (id UInt64, name String, tag LowCardinality(String), note String DEFAULT 'none', digest FixedString(32), at DateTime64(6, 'UTC')) ENGINE = MergeTree ORDER BY id");
  const { payload, expected } = rbRows();
  await viaHttp.insertRowBinary('rb', ['tag', 'id', 'name', 'digest', 'at'], RB_STRUCTURE, payload);
  const rows = await viaHttp.query<{ id: string; name: string; tag: string; digest: string; at: string; note: string }>(
    "SELECT toString(id) AS id, name, tag, hex(digest) AS digest, toString(toUnixTimestamp64Micro(at)) AS at, note FROM rb ORDER BY id",
  );
  assert.equal(rows, expected.map((r) => ({ ...r, note: 'none' })));
  assert.equal(await viaHttp.queryRowBinary('SELECT tag, id, name, digest, at FROM rb ORDER BY id'), payload, 'byte for byte');
});

modern('a RowBinary insert with a deduplication token is stored once: a second insert under the token is dropped, another token goes in', async () => {
  await modernReady;
  await viaHttp.exec("CREATE TABLE rb_claim (id UInt64, name String, tag LowCardinality(String), digest FixedString(32), at DateTime64(6, 'UTC')) ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 100");
  const { payload } = rbRows();
  const count = async () => Number((await viaHttp.query<{ n: string }>('SELECT count() AS n FROM rb_claim'))[0]!.n);
  await viaHttp.insertRowBinary('rb_claim', ['tag', 'id', 'name', 'digest', 'at'], RB_STRUCTURE, payload, { dedupToken: 'claim/1' });
  await viaHttp.insertRowBinary('rb_claim', ['tag', 'id', 'name', 'digest', 'at'], RB_STRUCTURE, payload, { dedupToken: 'claim/1' });
  assert.is(await count(), NAMES.length, 'the second insert under claim/1 was dropped');
  await viaHttp.insertRowBinary('rb_claim', ['tag', 'id', 'name', 'digest', 'at'], RB_STRUCTURE, payload, { dedupToken: 'claim/2' });
  assert.is(await count(), 2 * NAMES.length, 'another token is another insert');
});

modern('a malformed RowBinary payload is a STORE_FAILED error naming the insert; nothing is inserted and the store goes on', async () => {
  await modernReady;
  await viaHttp.exec("CREATE TABLE rb_bad (id UInt64, name String, tag LowCardinality(String), digest FixedString(32), at DateTime64(6, 'UTC')) ENGINE = MergeTree ORDER BY id");
  const { payload } = rbRows();
  for (const bad of [payload.subarray(0, payload.length - 3), Buffer.concat([payload, Buffer.from([0x05, 0x61])])]) {
    try {
      await viaHttp.insertRowBinary('rb_bad', ['tag', 'id', 'name', 'digest', 'at'], RB_STRUCTURE, bad);
      assert.unreachable('a malformed payload was accepted');
    } catch (err) {
      assert.instance(err, AgateError);
      assert.is((err as AgateError).code, 'STORE_FAILED');
      assert.match((err as Error).message, /INSERT INTO rb_bad FORMAT RowBinary, \d+ bytes.*Cannot read all data/s);
    }
  }
  const count = async () => Number((await viaHttp.query<{ n: string }>('SELECT count() AS n FROM rb_bad'))[0]!.n);
  assert.is(await count(), 0);
  await viaHttp.insertRowBinary('rb_bad', ['tag', 'id', 'name', 'digest', 'at'], RB_STRUCTURE, payload);
  assert.is(await count(), NAMES.length);
});

modern.run();
