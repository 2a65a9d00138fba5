import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OcsfEvent } from '../ocsf/map.js';
import { exportEvents } from './exporter.js';
import { HecSink } from './hec-sink.js';
import { PositionFile } from './position-file.js';
import type { ExportSource } from './types.js';

/*
 * A Splunk HEC receiver that drops connections, answers 503, and accepts-then-hangs up, against
 * the exporter: every event must arrive, duplicates only from batches whose acknowledgement was
 * lost, and a restarted exporter resumes from the saved position.
 */
const TOKEN = 'test-hec-token';
const TOTAL = 1000;
const BATCH = 50;

function source(): ExportSource {
  const events = Array.from({ length: TOTAL }, (_, i): OcsfEvent => ({ class_uid: 6005, time: 1_700_000_000_000 + i, metadata: { sequence: i + 1, log_name: 'embedded', uid: `e${i + 1}` } }));
  return {
    chains: async () => ['embedded'],
    read: async (_c, after, limit) => events.filter((e) => e.metadata.sequence > after).slice(0, limit),
  };
}

interface Receiver {
  server: Server;
  url: string;
  /** uid → times indexed */
  seen: Map<string, number>;
  /** Batches indexed but whose answer the client never got. */
  lostAcks: number;
  auth: Set<string>;
}

async function receiver(plan: (n: number) => 'ok' | 'drop' | '503' | 'ack-lost'): Promise<Receiver> {
  const r: Receiver = { server: undefined as unknown as Server, url: '', seen: new Map(), lostAcks: 0, auth: new Set() };
  let n = 0;
  r.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.auth.add(String(req.headers.authorization));
      const step = plan(n++);
      if (step === 'drop') return void req.socket.destroy();
      if (step === '503') return void res.writeHead(503).end('{"text":"Server is busy","code":9}');
      for (const line of Buffer.concat(chunks).toString('utf8').split('\n')) {
        const uid = (JSON.parse(line) as { event: OcsfEvent }).event.metadata.uid as string;
        r.seen.set(uid, (r.seen.get(uid) ?? 0) + 1);
      }
      if (step === 'ack-lost') {
        r.lostAcks++;
        return void req.socket.destroy();
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"text":"Success","code":0}');
    });
  });
  await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}`;
  return r;
}

const hec = suite('HecSink + exportEvents: at least once, none lost');
const dirs: string[] = [];
const servers: Server[] = [];
hec.after(async () => {
  for (const s of servers) await new Promise((resolve) => (s.closeAllConnections(), s.close(resolve)));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

hec('a receiver that drops and refuses requests still gets every event', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agate-hec-'));
  dirs.push(dir);
  // Deterministic trouble: every third request dropped, every fifth busy, every seventh indexed but unanswered.
  const r = await receiver((n) => (n % 3 === 1 ? 'drop' : n % 5 === 2 ? '503' : n % 7 === 3 ? 'ack-lost' : 'ok'));
  servers.push(r.server);
  const sink = new HecSink({ url: r.url, token: TOKEN, baseDelayMs: 1, maxDelayMs: 5, maxAttempts: 50 });
  const report = await exportEvents(source(), sink, new PositionFile(join(dir, 'pos.json')), { batch: BATCH });
  assert.is(report.delivered, TOTAL);
  assert.is(r.seen.size, TOTAL, 'none lost');
  const duplicates = [...r.seen.values()].reduce((a, c) => a + c - 1, 0);
  // Only a batch whose acknowledgement was lost may be indexed twice.
  assert.ok(r.lostAcks > 0);
  assert.ok(duplicates <= r.lostAcks * BATCH, `${duplicates} duplicates for ${r.lostAcks} lost acknowledgements`);
  assert.equal([...r.auth], [`Splunk ${TOKEN}`]);
  assert.equal(await new PositionFile(join(dir, 'pos.json')).load(), { embedded: TOTAL });
});

hec('a stopped export resumes from the last acknowledged position', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agate-hec-'));
  dirs.push(dir);
  const r = await receiver(() => 'ok');
  servers.push(r.server);
  const positions = new PositionFile(join(dir, 'pos.json'));
  const sink = new HecSink({ url: r.url, token: TOKEN });
  assert.is((await exportEvents(source(), sink, positions, { batch: BATCH, maxEvents: 300 })).delivered, 300);
  assert.equal(await positions.load(), { embedded: 300 });
  assert.is((await exportEvents(source(), sink, positions, { batch: BATCH })).delivered, TOTAL - 300);
  assert.is(r.seen.size, TOTAL);
  assert.ok([...r.seen.values()].every((c) => c === 1), 'a clean resume repeats nothing');
});

hec('a refused token stops the export without moving the position', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agate-hec-'));
  dirs.push(dir);
  const r = await receiver(() => 'ok');
  servers.push(r.server);
  r.server.removeAllListeners('request');
  r.server.on('request', (_req, res) => res.writeHead(403).end('{"text":"Invalid token","code":4}'));
  const positions = new PositionFile(join(dir, 'pos.json'));
  const sink = new HecSink({ url: r.url, token: 'wrong', baseDelayMs: 1 });
  try {
    await exportEvents(source(), sink, positions, { batch: BATCH });
    assert.unreachable('should have failed');
  } catch (err) {
    assert.is((err as { code: string }).code, 'EXPORT_DELIVERY_FAILED');
    assert.not.match((err as Error).message, /wrong/); // the token never appears in errors
  }
  assert.equal(await positions.load(), {});
});

hec('an agent\'s 2 MB statement and 500 of 4 KB reach a collector that refuses requests over 1 MB (413), the long text cut to fit', async () => {
  // Before, the batch went in one request: 413, which stops the export for good at that position.
  const events: OcsfEvent[] = [`DROP TABLE t /* ${'x'.repeat(2 << 20)} */`, ...Array.from({ length: 500 }, (_, i) => `SELECT ${i} /* ${'y'.repeat(4096)} */`)].map((text, i) => ({
    class_uid: 6005, time: 1_700_000_000_000 + i, metadata: { sequence: i + 1, log_name: 'embedded', uid: `big${i + 1}` }, query_info: { query_string: text },
  }));
  const seen: OcsfEvent[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (body.length > 1_000_000) return void res.writeHead(413).end('{"text":"Content too large","code":27}');
      for (const line of body.toString('utf8').split('\n')) seen.push((JSON.parse(line) as { event: OcsfEvent }).event);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"text":"Success","code":0}');
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const dir = mkdtempSync(join(tmpdir(), 'agate-hec-big-'));
  dirs.push(dir);
  const sink = new HecSink({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: TOKEN, maxAttempts: 2, baseDelayMs: 5 });
  const big: ExportSource = { chains: async () => ['embedded'], read: async (_c, after, limit) => events.filter((e) => e.metadata.sequence > after).slice(0, limit) };
  assert.is((await exportEvents(big, sink, new PositionFile(join(dir, 'p.json')), { batch: 500 })).delivered, 501);
  assert.equal(seen.map((e) => e.metadata.sequence), events.map((e) => e.metadata.sequence));
  assert.is(((seen[0]!.unmapped as { agate: { truncated: { field: string }[] } }).agate.truncated)[0]!.field, 'query_info.query_string');
  assert.ok(seen.slice(1).every((e) => e.unmapped === undefined), 'the others whole');
});

hec.run();
