import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { serialize } from 'pg-protocol';
import { BufferWriter } from './buffer-writer.js';
import { FrontendParser } from './frontend-parser.js';
import type { FrontendMessage } from './messages.js';
import { decodePassword, decodeSASLInitialResponse, decodeSASLResponse } from './password-message.js';

/** Feeds a startup packet, then one typed frame built by pg-protocol; checks it is forwarded byte for byte. */
function one(frame: Buffer): FrontendMessage {
  const msgs: FrontendMessage[] = [];
  const parser = new FrontendParser((m) => msgs.push(m));
  parser.push(serialize.startup({ user: 'alice' }));
  parser.push(frame);
  assert.is(msgs.length, 2);
  assert.ok(msgs[1]!.raw.equals(frame), 'raw is the whole frame');
  return msgs[1]!;
}

const typed = suite('decodeTypedMessage round-trips pg-protocol frames');
typed('Query, Terminate, Sync, Flush', () => {
  const q = one(serialize.query('select 1'));
  assert.ok(q.type === 'query' && q.text === 'select 1');
  assert.is(one(serialize.end()).type, 'terminate');
  assert.is(one(serialize.sync()).type, 'sync');
  assert.is(one(serialize.flush()).type, 'flush');
});
typed('PasswordMessage and its SASL decoders', () => {
  const p = one(serialize.password('s3cret'));
  assert.ok(p.type === 'password');
  if (p.type !== 'password') return;
  assert.is(decodePassword(p), 's3cret');
  const init = one(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=abc'));
  if (init.type !== 'password') return assert.unreachable();
  const decoded = decodeSASLInitialResponse(init);
  assert.is(decoded.mechanism, 'SCRAM-SHA-256');
  assert.is(decoded.data?.toString(), 'n,,n=,r=abc');
  const fin = one(serialize.sendSCRAMClientFinalMessage('c=biws,r=abc,p=xyz'));
  if (fin.type !== 'password') return assert.unreachable();
  assert.is(decodeSASLResponse(fin).toString(), 'c=biws,r=abc,p=xyz');
});
typed('Parse with parameter types', () => {
  const m = one(serialize.parse({ name: 's1', text: 'select $1, $2', types: [23, 4294967295] }));
  assert.equal({ ...m, raw: undefined }, { type: 'parse', name: 's1', query: 'select $1, $2', paramTypes: [23, 4294967295], raw: undefined });
});
typed('Bind with text, binary and NULL parameters', () => {
  const m = one(serialize.bind({ portal: 'p1', statement: 's1', values: ['42', null, Buffer.from([1, 2])], binary: true }));
  if (m.type !== 'bind') return assert.unreachable();
  assert.is(m.portal, 'p1');
  assert.is(m.statement, 's1');
  assert.equal(m.paramFormats, [0, 0, 1]);
  assert.equal(m.params.map((p) => (p ? [...p] : null)), [[0x34, 0x32], null, [1, 2]]);
  assert.equal(m.resultFormats, [1]);
});
typed('Execute, with and without a row limit', () => {
  assert.equal({ ...one(serialize.execute({ portal: 'p1', rows: 10 })), raw: undefined }, { type: 'execute', portal: 'p1', maxRows: 10, raw: undefined });
  assert.equal({ ...one(serialize.execute()), raw: undefined }, { type: 'execute', portal: '', maxRows: 0, raw: undefined });
});
typed('Describe and Close, statement and portal', () => {
  assert.equal({ ...one(serialize.describe({ type: 'S', name: 'st' })), raw: undefined }, { type: 'describe', kind: 'S', name: 'st', raw: undefined });
  assert.equal({ ...one(serialize.describe({ type: 'P' })), raw: undefined }, { type: 'describe', kind: 'P', name: '', raw: undefined });
  assert.equal({ ...one(serialize.close({ type: 'P', name: 'pt' })), raw: undefined }, { type: 'close', kind: 'P', name: 'pt', raw: undefined });
});
typed('CopyData, CopyDone, CopyFail', () => {
  const d = one(serialize.copyData(Buffer.from('1\tx\n')));
  assert.ok(d.type === 'copyData' && d.data.toString() === '1\tx\n');
  assert.is(one(serialize.copyDone()).type, 'copyDone');
  const f = one(serialize.copyFail('client gave up'));
  assert.ok(f.type === 'copyFail' && f.message === 'client gave up');
});
typed('FunctionCall (built by hand: pg-protocol has no serializer for it)', () => {
  const frame = new BufferWriter().addInt32(1598).addInt16(1).addInt16(1).addInt16(2)
    .addInt32(3).addBytes(Buffer.from('abc')).addInt32(-1).addInt16(0).flush(0x46);
  const m = one(frame);
  if (m.type !== 'functionCall') return assert.unreachable();
  assert.is(m.oid, 1598);
  assert.equal(m.argFormats, [1]);
  assert.equal(m.args.map((a) => a?.toString() ?? null), ['abc', null]);
  assert.is(m.resultFormat, 0);
});
typed.run();
