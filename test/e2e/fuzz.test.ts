// Malformed input: well over 100,000 mutated and truncated frontend frames, sent before and after
// authentication by many concurrent connections. Agate must never crash, must answer each
// broken connection with a FATAL ErrorResponse or close it, and must keep serving a well-behaved
// client throughout.
import { test } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { connect } from 'node:net';
import { serialize } from 'pg-protocol';
import { startAgate, type AgateFixture } from './agate-fixture.js';

const FRAMES_TARGET = 100_000;
const PARALLEL = 8;

/** xorshift32: deterministic per seed, so a failure can be replayed. */
function prng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

const corpus: Buffer[] = [
  serialize.query('SELECT 1'),
  serialize.query('SELECT id, name FROM items; SELECT 2'),
  serialize.parse({ text: 'SELECT $1::int + 1', types: [23] }),
  serialize.parse({ name: 's1', text: 'SELECT name FROM items WHERE id = $1' }),
  serialize.bind({ values: ['41'] }),
  serialize.bind({ statement: 's1', portal: 'p1', values: [Buffer.from([0, 0, 0, 1])], valueMapper: undefined, binary: true }),
  serialize.describe({ type: 'S', name: 's1' }),
  serialize.describe({ type: 'P', name: '' }),
  serialize.execute({ portal: '', rows: 0 }),
  serialize.execute({ portal: 'p1', rows: 1 }),
  serialize.close({ type: 'S', name: 's1' }),
  serialize.close({ type: 'P', name: 'p1' }),
  serialize.flush(),
  serialize.sync(),
  serialize.copyData(Buffer.from('1\tx\n')),
  serialize.copyDone(),
  serialize.copyFail('no'),
];

/** One frame, possibly mutated: byte flips, a lying length, a new type byte, truncation, garbage. */
function mutate(frame: Buffer, r: (n: number) => number): Buffer {
  const out = Buffer.from(frame);
  switch (r(8)) {
    case 0: // flip a few bytes
      for (let i = 1 + r(3); i > 0; i--) out[r(out.length)] = r(256);
      return out;
    case 1: // lie about the length
      if (out.length >= 5) out.writeInt32BE([0, 3, -1, 0x7fffffff, out.length + r(64), r(out.length)][r(6)]!, 1);
      return out;
    case 2: // another type byte
      out[0] = r(256);
      return out;
    case 3: // truncated
      return out.subarray(0, r(out.length));
    case 4: // trailing garbage inside the frame
      return Buffer.concat([out, Buffer.from(Array.from({ length: 1 + r(16) }, () => r(256)))]).fill(out.readUInt8(0), 0, 1);
    default:
      return out; // most frames stay valid so the session gets deep into the protocol
  }
}

async function oneConnection(agate: AgateFixture, seed: number, frames: number, authenticated: boolean): Promise<{ sent: number; fatal: boolean }> {
  const r = prng(seed);
  const socket = connect({ host: agate.host, port: agate.port });
  socket.on('error', () => {});
  let received = Buffer.alloc(0);
  socket.on('data', (d) => (received = received.length < 65536 ? Buffer.concat([received, d]) : received));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => (socket.once('connect', () => resolve()), socket.once('close', () => resolve())));
  let sent = 0;
  if (authenticated) {
    socket.write(serialize.startup({ user: 'fuzz', database: 'appdb' }));
    socket.write(serialize.password(await agate.token()));
    const deadline = Date.now() + 30_000;
    while (!received.includes(Buffer.from('Z\0\0\0\x05I')) && Date.now() < deadline && !socket.destroyed) await new Promise((x) => setTimeout(x, 5));
  } else {
    // Mutated startup packets: the unauthenticated surface.
    const startup = serialize.startup({ user: 'fuzz', database: 'appdb' });
    socket.write(mutate(startup, r));
    sent += 1;
  }
  const batch: Buffer[] = [];
  for (let i = 0; i < frames; i++) batch.push(mutate(corpus[r(corpus.length)]!, r));
  batch.push(serialize.sync());
  const bytes = Buffer.concat(batch);
  // Written in random-sized chunks so frames straddle reads.
  for (let pos = 0; pos < bytes.length && !socket.destroyed; ) {
    const n = 1 + r(4096);
    socket.write(bytes.subarray(pos, pos + n));
    pos += n;
  }
  sent += batch.length;
  const timer = setTimeout(() => socket.destroy(), 3_000);
  if (!authenticated || r(2) === 0) socket.end();
  await closed;
  clearTimeout(timer);
  // A FATAL ErrorResponse carries severity field 'S' then "FATAL".
  return { sent, fatal: received.includes(Buffer.from('SFATAL\0')) };
}

test('100,000+ mutated and truncated frames: no crash, FATAL or close, other clients unaffected', async () => {
  const agate = await startAgate({
    extraYaml: 'bus: { fsync: false }\n',
    policyYaml: 'policy:\n  default: deny\n  rules:\n    - { id: reads, action: allow, match: { sql: { statements: [SelectStmt] } } }\n',
  });
  try {
    const healthy = await agate.client();
    let healthyQueries = 0;
    let fuzzing = true;
    const steady = (async () => {
      while (fuzzing) {
        const r = await healthy.query('SELECT count(*)::int AS n FROM items WHERE id > $1', [0]);
        assert.is(r.rows[0].n, 3);
        healthyQueries += 1;
      }
    })();
    let sent = 0;
    let fatal = 0;
    let connections = 0;
    let seed = 1;
    while (sent < FRAMES_TARGET) {
      const round = Array.from({ length: PARALLEL }, (_, i) => oneConnection(agate, seed++, 200 + (i % 3) * 100, i % 4 !== 0));
      for (const res of await Promise.all(round)) {
        sent += res.sent;
        connections += 1;
        if (res.fatal) fatal += 1;
      }
    }
    fuzzing = false;
    await steady;
    await healthy.end();
    console.log(`fuzz: ${sent} frames over ${connections} connections; ${fatal} ended with a FATAL ErrorResponse; ${healthyQueries} healthy queries meanwhile`);
    assert.ok(sent >= FRAMES_TARGET);
    assert.ok(fatal > connections / 2, 'most fuzzed connections were told why they were closed');
    assert.ok(healthyQueries > 0);
    // Still serving, and the process is alive.
    const after = await agate.client();
    assert.is((await after.query('SELECT 1 AS one')).rows[0].one, 1);
    await after.end();
    assert.not.match(agate.logs(), /"level":"error","msg":"session failed"/);
    assert.not.match(agate.logs(), /Uncaught|RangeError|TypeError/);
  } finally {
    await agate.cleanup();
  }
});

test.run();
