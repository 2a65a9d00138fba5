import { suite } from 'uvu';
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
import { ClickHouseStore } from './clickhouse.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateSigner } from '../../../services/ledger/src/keys.js';

/*
 * The server store's transport against Debian's real clickhouse-server (18.16), and the full
 * ledger schema and queries through the same client against the modern engine behind the named
 * HTTP test double (no modern server binary can be installed here).
 */
const real = suite('ClickHouseStore against clickhouse-server 18.16');
let server: ClickHouseServer;
let store: ClickHouseStore;
const ready = (async () => {
  server = await startClickHouseServer();
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

modern.run();
