import { createHash } from 'node:crypto';
import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { serialize as frontend } from 'pg-protocol';
import { BUILTIN_MASK_SET } from '../../../../core/src/config.js';
import { ProtocolError } from '../../../../core/src/errors.js';
import { initSqlParser } from '../../../../core/src/sql/analyze.js';
import { silentLogger } from '../../../../core/src/log.js';
import { PROXY_DECIDED_ATTRIBUTE, type AgateEvent, type Command, type Notification, type Response, type Verdict } from '../../../../schemas/src/events.js';
import { SAMPLES } from '../../../../schemas/src/samples.js';
import { serialize as backend } from './backend-serializer.js';
import { PgEngine, type Decision } from './engine.js';
import { FrontendParser } from './frontend-parser.js';
import type { FunctionNames } from './function-names.js';
import { UNASKED_RULE } from '../decide.js';
import { Masker } from '../masking/masker.js';
import { MaskReadings } from './masking/mask-readings.js';
import type { FrontendMessage } from './messages.js';

/*
 * The engine with no socket: frontend messages (pg-protocol's serializer, read back by Agate's own
 * parser) in, the server's replies scripted frame by frame, and what it forwards and records read
 * off its callbacks. Policy is a function here: DROP is refused, everything else runs.
 */
const audit = new Masker('default', BUILTIN_MASK_SET);

function harness(functions: () => FunctionNames | undefined = () => undefined) {
  const upstream: Buffer[] = [];
  const events: AgateEvent[] = [];
  let seq = 0;
  const engine = new PgEngine(
    { upstream: (b) => void upstream.push(b), flushUpstream: () => undefined, terminate: () => undefined, fatal: async () => undefined },
    {
      sessionId: SAMPLES.Command.session_id,
      command: (text, parameters, attributes): Command => ({ ...SAMPLES.Command, event_id: `c${++seq}`, sequence: seq, text, parameters, attributes }),
      // Recorded as the bus would record it, then decided.
      decide: async (c): Promise<Decision> => {
        events.push(c);
        return c.text.includes('DROP') ? { kind: 'refuse', sqlstate: '42501', message: 'no DROP' } : { kind: 'run', client: undefined };
      },
      events: { emitLogged: async (e) => void events.push(e) },
      recording: { sampleRows: 5, valueChars: 64, audit, readings: new MaskReadings() },
      log: silentLogger,
      functions,
      sessionMask: () => undefined,
    copyShape: () => undefined,
    },
  );
  const parsed: FrontendMessage[] = [];
  const parser = new FrontendParser((m) => parsed.push(m));
  parser.push(frontend.startup({ user: 'agent', database: 'appdb' }));
  parsed.length = 0;
  return {
    engine,
    upstream,
    /** The client sends these frames; each message is handled in turn, as the session does. */
    async send(...frames: Buffer[]) {
      parser.push(Buffer.concat(frames));
      for (const m of parsed.splice(0)) await engine.message(m);
    },
    /** The server answers with these frames; returns what reaches the client. */
    reply(...frames: Buffer[]): Buffer[] {
      return frames.map((raw) => engine.route({ code: raw[0]!, raw })).filter((b): b is Buffer => b !== undefined);
    },
    /** Each command's text with its response's status, code and rows, in command order. */
    record(): [string, string | undefined, string | null | undefined, number | undefined][] {
      const responses = events.filter((e): e is Response => e.type === 'Response');
      return events.filter((e): e is Command => e.type === 'Command').map((c) => {
        const r = responses.find((x) => x.command_id === c.event_id);
        return [c.text, r?.status, r?.error_code, r?.rows];
      });
    },
    responses: () => events.filter((e): e is Response => e.type === 'Response'),
    events,
  };
}

// The pgjdbc / psycopg shape: Parse, Bind, Describe portal, Execute.
const step = (text: string, values: string[] = []) => [frontend.parse({ text }), frontend.bind({ values }), frontend.describe({ type: 'P' }), frontend.execute({})];
const described = () => backend.rowDescription([{ name: 'n', typeOid: 23 }]);
const ok = (...rows: string[]) => [backend.parseComplete(), backend.bindComplete(), described(), ...rows.map((r) => backend.dataRow([Buffer.from(r)])), backend.commandComplete(`SELECT ${rows.length}`)];
const error = (code: string) => backend.errorResponse({ severity: 'ERROR', code, message: `failed ${code}` });

const e = suite('PgEngine');
// Results mask whole what the SQL parser cannot read (derived-columns.ts): load it.
e.before(() => initSqlParser());

e('a pipeline with an error in the middle: each result stays with its own statement, across several Syncs', async () => {
  const h = harness();
  await h.send(...step('SELECT 1'), ...step('SELECT 1/0'), ...step('SELECT 3'), frontend.sync(), ...step('SELECT 4'), frontend.sync());
  // Every statement was decided; nothing was refused, so all of it went upstream in order.
  assert.is(h.upstream.length, 18);
  const out = h.reply(...ok('1'), backend.parseComplete(), backend.bindComplete(), described(), error('22012'), backend.readyForQuery('I'), ...ok('4'), backend.readyForQuery('I'));
  assert.is(out.length, 16, 'every reply reaches the client');
  const responses = h.responses();
  assert.equal(h.record(), [['SELECT 1', 'ok', null, 1], ['SELECT 1/0', 'error', '22012', 0], ['SELECT 3', 'skipped', null, 0], ['SELECT 4', 'ok', null, 1]]);
  assert.equal(responses.find((r) => r.command_id === 'c4')!.sample, [['4']]);
  assert.is(h.engine.pending, 0);
});

e('the error arrives before the rest of the batch: what follows until Sync is neither forwarded nor decided, only recorded', async () => {
  const h = harness();
  await h.send(...step('SELECT 1/0'), frontend.flush());
  h.reply(backend.parseComplete(), backend.bindComplete(), described(), error('22012'));
  const before = h.upstream.length;
  await h.send(...step('DROP TABLE t'), frontend.sync());
  assert.is(h.upstream.length, before + 1, 'only the Sync goes up: the server would ignore the rest');
  h.reply(backend.readyForQuery('I'));
  await h.send(...step('SELECT 2'), frontend.sync());
  h.reply(...ok('2'), backend.readyForQuery('I'));
  assert.equal(h.record(), [['SELECT 1/0', 'error', '22012', 0], ['DROP TABLE t', 'skipped', null, 0], ['SELECT 2', 'ok', null, 1]]);
});

e('an error at Parse goes to the Execute that used the statement; a refusal discards until Sync', async () => {
  const h = harness();
  await h.send(...step('SELECT * FROM nosuch'), frontend.sync(), ...step('DROP TABLE t'), ...step('SELECT 5'), frontend.sync());
  const out = h.reply(error('42P01'), backend.readyForQuery('I'), backend.parseComplete(), backend.bindComplete(), described(), error('42601'), backend.readyForQuery('I'));
  // The refusal's own error replaces the server's answer to the Parse Agate sent in its place.
  const codes = out.filter((b) => b[0] === 0x45).map((b) => b.toString('latin1'));
  assert.ok(codes[1]!.includes('42501') && codes[1]!.includes('no DROP'));
  // What the client sent after the refusal is not forwarded, and its Execute is recorded as skipped.
  assert.equal(h.record(), [['SELECT * FROM nosuch', 'error', '42P01', 0], ['DROP TABLE t', 'refused', '42501', 0], ['SELECT 5', 'skipped', null, 0]]);
});

e('Flush without Sync: a result is recorded as soon as it completes', async () => {
  const h = harness();
  await h.send(...step('SELECT 1'), frontend.flush());
  h.reply(...ok('1'));
  assert.equal(h.record(), [['SELECT 1', 'ok', null, 1]]);
});

e('a portal read with a row limit is decided once and recorded once, with its fetches', async () => {
  const h = harness();
  await h.send(frontend.parse({ text: 'SELECT g FROM t' }), frontend.bind({ portal: 'C_1' }), frontend.describe({ type: 'P', name: 'C_1' }), frontend.execute({ portal: 'C_1', rows: 2 }), frontend.sync());
  h.reply(backend.parseComplete(), backend.bindComplete(), backend.rowDescription([{ name: 'g', typeOid: 23 }]), backend.dataRow([Buffer.from('1')]), backend.dataRow([Buffer.from('2')]), backend.portalSuspended(), backend.readyForQuery('T'));
  await h.send(frontend.execute({ portal: 'C_1', rows: 2 }), frontend.sync());
  h.reply(backend.dataRow([Buffer.from('3')]), backend.commandComplete('SELECT 1'), backend.readyForQuery('T'));
  assert.equal(h.record(), [['SELECT g FROM t', 'ok', null, 3]]);
  assert.equal(h.responses()[0]!.fetches, [2, 1]);
  assert.equal(h.responses()[0]!.columns, ['g']);
});

e('a reply out of step with what was sent is thrown, never attributed', async () => {
  const h = harness();
  await h.send(...step('SELECT 1'), frontend.sync());
  assert.throws(() => h.reply(backend.readyForQuery('I')));
});

e('a FunctionCall refused before policy (no function has its OID) is recorded with one verdict: the built-in deny', async () => {
  const h = harness(() => ({ resolve: async () => undefined }) as unknown as FunctionNames);
  // FunctionCall ('F'): OID 1, no argument formats, no arguments, text result.
  const body = Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  const frame = Buffer.concat([Buffer.from([0x46]), Buffer.from([0, 0, 0, body.length + 4]), body]);
  await h.send(frame);
  const [command, verdict, response] = h.events as [Command, Verdict, Response];
  assert.equal(h.events.map((x) => x.type), ['Command', 'Verdict', 'Response']);
  assert.is(command.attributes[PROXY_DECIDED_ATTRIBUTE], UNASKED_RULE, 'policy leaves it to this verdict');
  assert.equal([verdict.command_id, verdict.decision, verdict.rule_id, verdict.reason], [command.event_id, 'deny', UNASKED_RULE, 'Agate refused the function call: no function has OID 1']);
  assert.is(response.status, 'refused');
});

e('closing records what is outstanding as never completed', async () => {
  const h = harness();
  await h.send(frontend.query('SELECT pg_sleep(10)'));
  h.engine.close('the session ended');
  assert.equal(h.record(), [['SELECT pg_sleep(10)', 'skipped', null, 0]]);
  await h.send(frontend.query('SELECT 2'));
  assert.is(h.record().length, 1, 'nothing is handled once closed');
});


/** A NotificationResponse frame as the server sends one. */
function notification(pid: number, channel: string, payload: string): Buffer {
  const body = Buffer.concat([Buffer.alloc(4), Buffer.from(`${channel}\0${payload}\0`, 'utf8')]);
  body.writeInt32BE(pid, 0);
  const frame = Buffer.alloc(5 + body.length);
  frame[0] = 0x41; // A
  frame.writeInt32BE(4 + body.length, 1);
  body.copy(frame, 5);
  return frame;
}

e('a notification is delivered as sent and recorded as a Notification: masked with the audit set, cut, sized and digested as delivered', async () => {
  const h = harness();
  const key = 'AKIAABCDEFGHIJKLMNOP';
  const payload = `key ${key} ${'x'.repeat(100)}`;
  const [out] = h.reply(notification(4242, 'jobs', payload));
  assert.ok(out!.includes(Buffer.from(key)), 'an unmasked client gets what the server sent');
  const [n, ...more] = h.events.filter((x): x is Notification => x.type === 'Notification');
  assert.is(more.length, 0);
  assert.is(n!.session_id, SAMPLES.Command.session_id);
  assert.is(n!.sender_pid, 4242);
  assert.is(n!.channel, 'jobs');
  assert.not.ok(n!.payload.includes(key), n!.payload);
  assert.ok(n!.payload.startsWith('key ') && n!.payload.endsWith('…') && n!.payload.length === 65, n!.payload);
  assert.is(n!.payload_bytes, Buffer.byteLength(payload));
  assert.is(n!.digest, `sha256:${createHash('sha256').update(payload).digest('hex')}`);
  assert.is(n!.masked_values, 0);
  assert.is(h.record().length, 0, 'no command was made up for it');
});

e('a notification that cannot be read is thrown (the session ends), never forwarded unrecorded', async () => {
  const h = harness();
  const frame = Buffer.from([0x41, 0, 0, 0, 8, 0, 0, 0, 1]);
  assert.throws(() => h.reply(frame), (err: Error) => err instanceof ProtocolError);
  assert.is(h.events.length, 0);
});

e.run();
