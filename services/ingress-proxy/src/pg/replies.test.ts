import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BUILTIN_MASK_SET } from '../../../../core/src/config.js';
import { initSqlParser } from '../../../../core/src/sql/analyze.js';
import type { Response } from '../../../../schemas/src/events.js';
import { SAMPLES } from '../../../../schemas/src/samples.js';
import { serialize } from './backend-serializer.js';
import type { BackendFrame } from './backend-frames.js';
import { ExtendedState } from './extended-state.js';
import { Masker } from '../masking/masker.js';
import { MaskReadings } from './masking/mask-readings.js';
import { ReplyRouter, type FailedMessage } from './replies.js';
import { StatementResult } from './result-recorder.js';

const audit = new Masker('default', BUILTIN_MASK_SET);
const frame = (raw: Buffer): BackendFrame => ({ code: raw[0]!, raw });
const result = (text: string, client?: Masker) => new StatementResult({ ...SAMPLES.Command, text, event_id: text }, { sampleRows: 2, valueChars: 64, audit, readings: new MaskReadings() }, client);
const setup = () => {
  const responses: Response[] = [];
  const failed: { failed: FailedMessage; code: string | null | undefined }[] = [];
  let idle = 0;
  const router = new ReplyRouter({
    emit: (r) => responses.push(r),
    onIdle: () => (idle += 1),
    recordFailed: (f, outcome) => failed.push({ failed: f, code: outcome.error_code }),
  });
  return { router, responses, failed, idle: () => idle };
};
const raw = Buffer.alloc(0);
/** Parse + Bind of `text` through the state, with the router told as the session does. */
const parseBind = (router: ReplyRouter, state: ExtendedState, name: string, text: string, portalName = '') => {
  const p = state.parse({ type: 'parse', name, query: text, paramTypes: [], raw });
  if (!p.ok) throw new Error(p.message);
  router.expect({ kind: 'parse', undo: p.undo, statement: p.statement, name });
  const b = state.bind({ type: 'bind', portal: portalName, statement: name, paramFormats: [], params: [Buffer.from('abc')], resultFormats: [], raw });
  if (!b.ok) throw new Error(b.message);
  router.expect({ kind: 'bind', undo: b.undo, portal: b.portal, name: portalName });
  return b.portal;
};
const err = (code: string) => serialize.errorResponse({ severity: 'ERROR', code, message: 'boom' });

const route = suite('ReplyRouter');
// Results mask whole what the SQL parser cannot read (derived-columns.ts): load it.
route.before(() => initSqlParser());

route('attributes rows and completion to the Execute, records digest and masked sample', () => {
  const { router, responses, idle } = setup();
  const r = result('SELECT');
  router.expect({ kind: 'execute', result: r });
  router.expect({ kind: 'sync' });
  r.setColumns([{ name: 'api_token', tableOid: 0, columnAttr: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }]);
  for (let i = 0; i < 3; i++) router.route(frame(serialize.dataRow([Buffer.from(`t${i}`)])));
  router.route(frame(serialize.commandComplete('SELECT 3')));
  router.route(frame(serialize.readyForQuery('I')));
  assert.is(responses.length, 1);
  assert.is(responses[0]!.rows, 3);
  assert.equal(responses[0]!.sample, [['[masked]'], ['[masked]']]);
  assert.match(responses[0]!.digest!, /^sha256:[0-9a-f]{64}$/);
  assert.is(router.pending, 0);
  assert.is(idle(), 1);
});

route('an error skips everything up to Sync: later Executes are recorded skipped, bookkeeping undone newest first', () => {
  const { router, responses } = setup();
  const state = new ExtendedState();
  const p1 = state.parse({ type: 'parse', name: 's1', query: 'SELECT 1', paramTypes: [], raw: Buffer.alloc(0) });
  const p2 = state.parse({ type: 'parse', name: 's2', query: 'SELECT 2', paramTypes: [], raw: Buffer.alloc(0) });
  assert.ok(p1.ok && p2.ok);
  if (!p1.ok || !p2.ok) return;
  router.expect({ kind: 'parse', undo: p1.undo, statement: p1.statement, name: 's1' });
  router.expect({ kind: 'parse', undo: p2.undo, statement: p2.statement, name: 's2' });
  router.expect({ kind: 'execute', result: result('never') });
  router.expect({ kind: 'sync' });
  assert.ok(router.route(frame(err('42601'))));
  assert.equal([...state.statements.keys()], []);
  assert.equal(responses.map((r) => r.status), ['skipped']);
  router.route(frame(serialize.readyForQuery('I')));
  assert.is(router.pending, 0);
});

route('an error at Parse is recorded against the Execute of that statement, with the SQLSTATE', () => {
  const { router, responses, failed } = setup();
  const state = new ExtendedState();
  const portal = parseBind(router, state, '', 'SELECT * FROM nosuch');
  router.expect({ kind: 'describe', portal, swallow: false });
  router.expect({ kind: 'execute', result: result('SELECT * FROM nosuch'), portal });
  router.expect({ kind: 'sync' });
  router.route(frame(err('42P01')));
  assert.equal(responses.map((r) => [r.command_id, r.status, r.error_code, r.error_message]), [['SELECT * FROM nosuch', 'error', '42P01', 'boom']]);
  assert.is(failed.length, 0, 'claimed by the Execute: not recorded twice');
  assert.is(state.statements.size, 0, 'the failed Parse left no statement');
  router.route(frame(serialize.readyForQuery('I')));
  assert.is(router.pending, 0);
});

route('an error at Bind goes to the Execute of that portal; an unrelated Execute in the batch is skipped', () => {
  const { router, responses } = setup();
  const state = new ExtendedState();
  const first = parseBind(router, state, 'a', 'SELECT $1::int', 'pa');
  const second = parseBind(router, state, 'b', 'SELECT 2', 'pb');
  router.expect({ kind: 'execute', result: result('SELECT $1::int'), portal: first });
  router.expect({ kind: 'execute', result: result('SELECT 2'), portal: second });
  router.expect({ kind: 'sync' });
  router.route(frame(serialize.parseComplete()));
  router.route(frame(err('22P02'))); // Bind of pa: invalid input syntax for type integer
  assert.equal(responses.map((r) => [r.command_id, r.status, r.error_code]), [['SELECT $1::int', 'error', '22P02'], ['SELECT 2', 'skipped', null]]);
  assert.is(state.portals.size, 0, 'neither portal exists on the server');
  assert.equal([...state.statements.keys()], ['a'], 'the second Parse was skipped, the first stands');
});

route('a failed Parse no Execute used (asyncpg prepares with Parse/Describe/Sync) is handed over to be recorded', () => {
  const { router, responses, failed } = setup();
  const state = new ExtendedState();
  const p = state.parse({ type: 'parse', name: '__asyncpg_stmt_1__', query: 'SELECT 1/0', paramTypes: [], raw });
  if (!p.ok) throw new Error('parse refused');
  router.expect({ kind: 'parse', undo: p.undo, statement: p.statement, name: '__asyncpg_stmt_1__' });
  router.expect({ kind: 'describe', statement: p.statement, swallow: false });
  router.expect({ kind: 'sync' });
  router.route(frame(err('22012')));
  assert.is(responses.length, 0);
  assert.equal(failed.map((f) => [f.failed.kind, f.failed.statement?.text, f.code]), [['parse', 'SELECT 1/0', '22012']]);
});

route('pipelining: messages the client sends after an error, before its Sync, are skipped at once, never matched to later replies', () => {
  const { router, responses } = setup();
  const state = new ExtendedState();
  const p1 = parseBind(router, state, '', 'SELECT 1/0');
  router.expect({ kind: 'execute', result: result('SELECT 1/0'), portal: p1 });
  // The server's error arrives while the rest of the pipeline is still being decided.
  router.route(frame(serialize.parseComplete()));
  router.route(frame(serialize.bindComplete()));
  router.route(frame(err('22012')));
  const p2 = parseBind(router, state, '', 'SELECT 2');
  router.expect({ kind: 'describe', portal: p2, swallow: false });
  router.expect({ kind: 'execute', result: result('SELECT 2'), portal: p2 });
  router.expect({ kind: 'sync' });
  assert.equal(responses.map((r) => [r.command_id, r.status]), [['SELECT 1/0', 'error'], ['SELECT 2', 'skipped']]);
  assert.is(router.pending, 1, 'only the Sync is awaited');
  router.route(frame(serialize.readyForQuery('I')));
  // The next batch's replies belong to the next batch's statements.
  const p3 = parseBind(router, state, '', 'SELECT 3');
  router.expect({ kind: 'execute', result: result('SELECT 3'), portal: p3 });
  router.expect({ kind: 'sync' });
  for (const f of [serialize.parseComplete(), serialize.bindComplete(), serialize.dataRow([Buffer.from('3')]), serialize.commandComplete('SELECT 1'), serialize.readyForQuery('I')]) router.route(frame(f));
  assert.equal(responses.map((r) => [r.command_id, r.status, r.rows]), [['SELECT 1/0', 'error', 0], ['SELECT 2', 'skipped', 0], ['SELECT 3', 'ok', 1]]);
  assert.is(router.pending, 0);
});

route('a failed Parse is claimed by an Execute the client sent after the error arrived', () => {
  const { router, responses, failed } = setup();
  const state = new ExtendedState();
  const portal = parseBind(router, state, 's', 'SELECT * FROM nosuch', 'p');
  router.route(frame(err('42P01')));
  router.expect({ kind: 'execute', result: result('SELECT * FROM nosuch'), portal });
  router.expect({ kind: 'sync' });
  assert.equal(responses.map((r) => [r.status, r.error_code]), [['error', '42P01']]);
  assert.is(failed.length, 0);
});

route('a reply that fits no outstanding message is a protocol error, never attributed to another statement', () => {
  const { router } = setup();
  router.expect({ kind: 'execute', result: result('SELECT 1') });
  assert.throws(() => router.route(frame(serialize.readyForQuery('I'))), (e: unknown) => (e as { code?: string }).code === 'PROTOCOL_VIOLATION');
  const other = setup();
  assert.throws(() => other.router.route(frame(serialize.dataRow([Buffer.from('x')]))), (e: unknown) => (e as { code?: string }).code === 'PROTOCOL_VIOLATION');
  const parse = setup();
  parse.router.expect({ kind: 'close', undo: () => undefined });
  assert.throws(() => parse.router.route(frame(serialize.commandComplete('SELECT 1'))), (e: unknown) => (e as { code?: string }).code === 'PROTOCOL_VIOLATION');
});

route('Flush without Sync: results arrive per Execute; several Syncs each end their own batch', () => {
  const { router, responses, idle } = setup();
  const state = new ExtendedState();
  const a = parseBind(router, state, 'a', 'SELECT 1', 'pa');
  router.expect({ kind: 'execute', result: result('a'), portal: a });
  for (const f of [serialize.parseComplete(), serialize.bindComplete(), serialize.dataRow([Buffer.from('1')]), serialize.commandComplete('SELECT 1')]) router.route(frame(f));
  assert.equal(responses.map((r) => [r.command_id, r.status, r.rows]), [['a', 'ok', 1]], 'recorded before any Sync');
  router.expect({ kind: 'sync' });
  router.expect({ kind: 'sync' });
  const b = parseBind(router, state, 'b', 'SELECT 2', 'pb');
  router.expect({ kind: 'execute', result: result('b'), portal: b });
  router.expect({ kind: 'sync' });
  router.route(frame(serialize.readyForQuery('I')));
  router.route(frame(serialize.readyForQuery('I')));
  for (const f of [serialize.parseComplete(), serialize.bindComplete(), serialize.commandComplete('SELECT 0'), serialize.readyForQuery('I')]) router.route(frame(f));
  assert.equal(responses.map((r) => [r.command_id, r.status]), [['a', 'ok'], ['b', 'ok']]);
  assert.is(idle(), 3);
  assert.is(router.pending, 0);
});

route('a portal fetched with a row limit is one statement: one Response with the rows of each fetch', () => {
  const { router, responses } = setup();
  const state = new ExtendedState();
  const portal = parseBind(router, state, 's', 'SELECT g FROM generate_series(1, 5) g', 'C_1');
  router.route(frame(serialize.parseComplete()));
  router.route(frame(serialize.bindComplete()));
  const r = result('fetch');
  const fetch = (rows: number, end: Buffer) => {
    // A continuation is expected with the portal's own result, as the session does.
    router.expect({ kind: 'execute', result: portal.run ?? r, portal });
    router.expect({ kind: 'sync' });
    for (let i = 0; i < rows; i++) router.route(frame(serialize.dataRow([Buffer.from(String(i))])));
    router.route(frame(end));
    router.route(frame(serialize.readyForQuery('T')));
  };
  fetch(2, serialize.portalSuspended());
  assert.is(portal.run, r, 'suspended: the next Execute continues it');
  fetch(2, serialize.portalSuspended());
  assert.is(responses.length, 0, 'nothing recorded while the portal is suspended');
  fetch(1, serialize.commandComplete('SELECT 1')); // the tag counts the last fetch only
  assert.equal(responses.map((x) => [x.command_id, x.status, x.command_tag, x.rows, x.fetches]), [['fetch', 'ok', 'SELECT 1', 5, [2, 2, 1]]]);
  assert.is(portal.run, undefined);
  assert.is(router.pending, 0);
});

route('a suspended portal that ends unfinished (its transaction over) is recorded with the fetches it made', () => {
  const { router, responses } = setup();
  const state = new ExtendedState((p) => responses.push(p.run!.unfinished()));
  const portal = parseBind(router, state, 's', 'SELECT 1', 'C_2');
  router.route(frame(serialize.parseComplete()));
  router.route(frame(serialize.bindComplete()));
  router.expect({ kind: 'execute', result: result('unfinished'), portal });
  router.route(frame(serialize.dataRow([Buffer.from('1')])));
  router.route(frame(serialize.portalSuspended()));
  state.endTransaction();
  assert.equal(responses.map((x) => [x.command_id, x.status, x.command_tag, x.rows, x.fetches]), [['unfinished', 'ok', null, 1, [1]]]);
  state.endTransaction();
  assert.is(responses.length, 1, 'recorded once');
});

route('a portal closed right behind its row-limited Execute (before PortalSuspended came back) still gets its one Response', () => {
  const { router, responses } = setup();
  const state = new ExtendedState((p) => responses.push(p.run!.unfinished()));
  const portal = parseBind(router, state, 's', "UPDATE t SET x = 1 RETURNING x", 'C_4');
  router.route(frame(serialize.parseComplete()));
  router.route(frame(serialize.bindComplete()));
  router.expect({ kind: 'execute', result: result('closed'), portal });
  router.expect({ kind: 'close', undo: state.close({ type: 'close', kind: 'P', name: 'C_4', raw: Buffer.alloc(0) }) });
  router.route(frame(serialize.dataRow([Buffer.from('1')])));
  router.route(frame(serialize.portalSuspended()));
  router.route(frame(serialize.closeComplete()));
  state.endTransaction();
  assert.equal(responses.map((x) => [x.command_id, x.status, x.command_tag, x.rows, x.fetches]), [['closed', 'ok', null, 1, [1]]]);
  assert.match(responses[0]!.error_message ?? '', /not how many it changed/, String(responses[0]!.error_message));
});

route('Executes of one portal pipelined before its first suspended: each fetch recorded once, in the Execute that fetched it', () => {
  const { router, responses } = setup();
  const state = new ExtendedState((p) => responses.push(p.run!.unfinished()));
  const portal = parseBind(router, state, 's', 'SELECT g FROM generate_series(1, 2) g', 'C_3');
  router.route(frame(serialize.parseComplete()));
  router.route(frame(serialize.bindComplete()));
  // All three sent before any answer: none could continue the first, so each was decided alone.
  for (const name of ['first', 'second', 'third']) router.expect({ kind: 'execute', result: result(name), portal });
  for (const end of [serialize.portalSuspended(), serialize.portalSuspended()]) {
    router.route(frame(serialize.dataRow([Buffer.from('1')])));
    router.route(frame(end));
  }
  router.route(frame(serialize.commandComplete('SELECT 0')));
  state.endTransaction();
  assert.equal(responses.map((x) => [x.command_id, x.rows]).sort(), [['first', 1], ['second', 1], ['third', 0]]);
  assert.is(portal.run, undefined);
});

route('a refusal replaces the server error with Agate\'s; a describe Agate sent is not delivered', () => {
  const { router } = setup();
  const mine = serialize.errorResponse({ severity: 'ERROR', code: '42501', message: 'refused' });
  router.expect({ kind: 'refusal', error: mine });
  router.expect({ kind: 'sync' });
  assert.is(router.route(frame(err('42601'))), mine);
  router.route(frame(serialize.readyForQuery('T')));
  assert.is(router.tx, 'T');
  const portal = { statement: undefined, params: [], paramFormats: [], described: true };
  router.expect({ kind: 'describe', portal, swallow: true });
  assert.is(router.route(frame(serialize.rowDescription([{ name: 'a', typeOid: 23 }]))), undefined);
  assert.equal((portal as { columns?: { name: string }[] }).columns?.map((c) => c.name), ['a']);
});

route('a simple query: one Response per statement; after an error the rest are skipped', () => {
  const { router, responses } = setup();
  router.expect({ kind: 'query', results: [result('one'), result('two'), result('three')], index: 0 });
  router.route(frame(serialize.rowDescription([{ name: 'x', typeOid: 23 }])));
  router.route(frame(serialize.dataRow([Buffer.from('1')])));
  router.route(frame(serialize.commandComplete('SELECT 1')));
  router.route(frame(err('22012')));
  router.route(frame(serialize.readyForQuery('I')));
  assert.equal(responses.map((r) => r.status), ['ok', 'error', 'skipped']);
  assert.equal(responses[0]!.columns, ['x']);
  assert.is(responses[1]!.error_code, '22012');
});

route('asynchronous notices pass through without consuming an expectation', () => {
  const { router } = setup();
  router.expect({ kind: 'sync' });
  const notice = serialize.noticeResponse({ severity: 'NOTICE', code: '00000', message: 'hi' });
  assert.is(router.route(frame(notice)), notice);
  assert.is(router.pending, 1);
});

route('an error quoting a value: masked for a masked client, recorded masked, passed as is otherwise', () => {
  const key = 'AKIAABCDEFGHIJKLMNOP';
  const quoting = serialize.errorResponse({ severity: 'ERROR', code: '22P02', message: `invalid input syntax for type integer: "${key}"`, detail: `Key (k)=(${key}) already exists.` });
  for (const client of [audit, undefined]) {
    const { router, responses } = setup();
    router.expect({ kind: 'execute', result: result('SELECT k::int FROM t', client) });
    router.expect({ kind: 'sync' });
    const out = router.route(frame(quoting))!;
    assert.is(out.includes(Buffer.from(key)), client === undefined, 'the key reaches the client only when unmasked');
    if (client !== undefined) assert.ok(out.includes(Buffer.from('Key (k)=([masked:cloud_access_key]) already exists.')));
    assert.is(responses[0]!.error_message, 'invalid input syntax for type integer: "[masked:cloud_access_key]"');
  }
});

/** CopyInResponse: text format, no columns. */
const copyIn = () => Buffer.from([0x47, 0, 0, 0, 7, 0, 0, 0]);

route('a Sync sent before the COPY data is ignored by the server: no ReadyForQuery is expected for it', () => {
  const { router, responses } = setup();
  const r = result('COPY t FROM STDIN');
  // libpq: Execute and Sync together, then the data, CopyDone and another Sync.
  router.expect({ kind: 'execute', result: r });
  router.expect({ kind: 'sync' });
  router.route(frame(copyIn()));
  assert.is(router.readyPending, 0);
  router.expect({ kind: 'copy', end: false });
  assert.ok(router.syncInCopyData);
  router.expect({ kind: 'copy', end: true });
  router.expect({ kind: 'sync' });
  router.route(frame(serialize.commandComplete('COPY 1')));
  router.route(frame(serialize.readyForQuery('I')));
  assert.is(router.pending, 0);
  assert.equal(responses.map((x) => [x.status, x.command_tag]), [['ok', 'COPY 1']]);
  // Everything sent before the CopyInResponse came back counts the same way.
  router.expect({ kind: 'execute', result: result('COPY t FROM STDIN') });
  router.expect({ kind: 'sync' });
  router.expect({ kind: 'copy', end: false });
  router.expect({ kind: 'copy', end: true });
  router.expect({ kind: 'sync' });
  router.route(frame(copyIn()));
  assert.is(router.readyPending, 1);
  // A COPY that fails before it starts leaves its Sync honoured, and the marks are dropped.
  router.route(frame(serialize.commandComplete('COPY 1')));
  router.route(frame(serialize.readyForQuery('I')));
  router.expect({ kind: 'execute', result: result('COPY missing FROM STDIN') });
  router.expect({ kind: 'sync' });
  router.expect({ kind: 'copy', end: true });
  router.route(frame(err('42P01')));
  router.route(frame(serialize.readyForQuery('I')));
  assert.is(router.pending, 0);
});

route('a Sync inside COPY data puts the replies out of step: the router refuses to follow', () => {
  const { router } = setup();
  router.expect({ kind: 'execute', result: result('COPY t FROM STDIN') });
  router.expect({ kind: 'copy', end: false });
  router.expect({ kind: 'sync' });
  router.expect({ kind: 'copy', end: true });
  assert.throws(() => router.route(frame(copyIn())), /inside COPY data/);
});

route.run();

const ext = suite('ExtendedState');
ext('redefining a named statement is refused; unnamed ones are replaced', () => {
  const s = new ExtendedState();
  const raw = Buffer.alloc(0);
  assert.ok(s.parse({ type: 'parse', name: 'a', query: 'SELECT 1', paramTypes: [], raw }).ok);
  const again = s.parse({ type: 'parse', name: 'a', query: 'DROP TABLE t', paramTypes: [], raw });
  assert.is(again.ok ? '' : again.sqlstate, '42P05');
  assert.is(s.statements.get('a')!.text, 'SELECT 1');
  assert.ok(s.parse({ type: 'parse', name: '', query: 'SELECT 2', paramTypes: [], raw }).ok);
  assert.ok(s.parse({ type: 'parse', name: '', query: 'SELECT 3', paramTypes: [], raw }).ok);
  assert.is(s.statements.get('')!.text, 'SELECT 3');
});
ext('a portal captures its statement at Bind; closing the statement later does not change it', () => {
  const s = new ExtendedState();
  const raw = Buffer.alloc(0);
  s.parse({ type: 'parse', name: 'q', query: 'SELECT $1', paramTypes: [23], raw });
  s.bind({ type: 'bind', portal: 'p', statement: 'q', paramFormats: [1], params: [Buffer.from([0, 0, 0, 7])], resultFormats: [], raw });
  s.close({ type: 'close', kind: 'S', name: 'q', raw });
  assert.is(s.portals.get('p')!.statement!.text, 'SELECT $1');
  s.endTransaction();
  assert.is(s.portals.size, 0);
});
ext.run();
