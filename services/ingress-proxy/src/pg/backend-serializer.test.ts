import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { Parser } from 'pg-protocol/dist/parser.js';
import { serialize } from './backend-serializer.js';

/** Parses backend bytes with pg-protocol's client-side parser, as node-postgres would. */
function parse(bytes: Buffer): Record<string, any>[] {
  const out: Record<string, any>[] = [];
  new Parser().parse(bytes, (m) => out.push(m as unknown as Record<string, any>));
  return out;
}
const violation = (e: unknown): boolean => (e as { code?: string }).code === 'PROTOCOL_VIOLATION';
const only = (bytes: Buffer): Record<string, any> => {
  const msgs = parse(bytes);
  assert.is(msgs.length, 1);
  return msgs[0]!;
};

const authentication = suite('serialize authentication');
authentication('Ok and CleartextPassword', () => {
  assert.is(only(serialize.authenticationOk()).name, 'authenticationOk');
  assert.is(only(serialize.authenticationCleartextPassword()).name, 'authenticationCleartextPassword');
});
authentication('MD5Password carries the salt; bad salts are refused', () => {
  const m = only(serialize.authenticationMD5Password(Buffer.from([1, 2, 3, 4])));
  assert.is(m.name, 'authenticationMD5Password');
  assert.equal([...m.salt], [1, 2, 3, 4]);
  assert.throws(() => serialize.authenticationMD5Password(Buffer.alloc(3)), violation);
});
authentication('SASL, SASLContinue, SASLFinal', () => {
  const sasl = only(serialize.authenticationSASL(['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS']));
  assert.is(sasl.name, 'authenticationSASL');
  assert.equal(sasl.mechanisms, ['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS']);
  const cont = only(serialize.authenticationSASLContinue('r=abc,s=c2FsdA==,i=4096'));
  assert.equal([cont.name, cont.data], ['authenticationSASLContinue', 'r=abc,s=c2FsdA==,i=4096']);
  const fin = only(serialize.authenticationSASLFinal(Buffer.from('v=xyz')));
  assert.equal([fin.name, fin.data], ['authenticationSASLFinal', 'v=xyz']);
});
authentication.run();

const session = suite('serialize session messages');
session('ParameterStatus, BackendKeyData, ReadyForQuery', () => {
  const ps = only(serialize.parameterStatus('server_version', '16.2'));
  assert.equal([ps.name, ps.parameterName, ps.parameterValue], ['parameterStatus', 'server_version', '16.2']);
  // 'v' | len | Int32 3.0 | Int32 1 | "_pq_.x\0"
  assert.equal([...serialize.negotiateProtocolVersion(0, ['_pq_.x'])], [0x76, 0, 0, 0, 19, 0, 3, 0, 0, 0, 0, 0, 1, ...Buffer.from('_pq_.x\0')]);
  const key = only(serialize.backendKeyData(1234, -99));
  assert.equal([key.name, key.processID, key.secretKey], ['backendKeyData', 1234, -99]);
  for (const status of ['I', 'T', 'E'] as const) {
    const rfq = only(serialize.readyForQuery(status));
    assert.equal([rfq.name, rfq.status], ['readyForQuery', status]);
  }
});
session('SSL replies are single unframed bytes', () => {
  assert.equal([...serialize.sslRefused()], [0x4e]);
  assert.equal([...serialize.sslAccepted()], [0x53]);
});
session.run();

const errors = suite('serialize errorResponse / noticeResponse');
errors('ErrorResponse fields survive with their letters', () => {
  const bytes = serialize.errorResponse({
    severity: 'FATAL', code: '28P01', message: 'password authentication failed for user "bob"',
    detail: 'd', hint: 'h', position: 7, where: 'w', schema: 'public', table: 't', column: 'c',
    dataType: 'int4', constraint: 'k', file: 'auth.c', line: 42, routine: 'auth_failed',
  });
  const e = only(bytes);
  assert.is(e.name, 'error');
  assert.equal(
    [e.severity, e.code, e.message, e.detail, e.hint, e.position, e.where, e.schema, e.table, e.column, e.dataType, e.constraint, e.file, e.line, e.routine],
    ['FATAL', '28P01', 'password authentication failed for user "bob"', 'd', 'h', '7', 'w', 'public', 't', 'c', 'int4', 'k', 'auth.c', '42', 'auth_failed'],
  );
  assert.ok(bytes.includes(Buffer.from('VFATAL\0')), 'non-localized severity V is written');
});
errors('NoticeResponse, with optional fields omitted', () => {
  const n = only(serialize.noticeResponse({ severity: 'WARNING', code: '01000', message: 'careful' }));
  assert.equal([n.name, n.severity, n.code, n.message, n.detail], ['notice', 'WARNING', '01000', 'careful', undefined]);
});
errors('an invalid SQLSTATE or a NUL inside a field is refused', () => {
  assert.throws(() => serialize.errorResponse({ severity: 'ERROR', code: '123', message: 'x' }), violation);
  assert.throws(() => serialize.errorResponse({ severity: 'ERROR', code: 'XX000', message: 'a\0Mforged' }), violation);
});
errors.run();

const results = suite('serialize query results');
results('RowDescription and DataRow', () => {
  const rd = only(serialize.rowDescription([
    { name: 'id', tableOid: 16384, columnAttr: 1, typeOid: 23, typeSize: 4 },
    { name: 'blob', typeOid: 17, format: 1 },
  ]));
  assert.is(rd.name, 'rowDescription');
  const [id, blob] = rd.fields;
  assert.equal([id.name, id.tableID, id.columnID, id.dataTypeID, id.dataTypeSize, id.dataTypeModifier, id.format], ['id', 16384, 1, 23, 4, -1, 'text']);
  assert.equal([blob.name, blob.tableID, blob.dataTypeID, blob.dataTypeSize, blob.format], ['blob', 0, 17, -1, 'binary']);
  const row = only(serialize.dataRow([Buffer.from('42'), null, Buffer.alloc(0), Buffer.from('héllo')]));
  assert.is(row.name, 'dataRow');
  assert.equal(row.fields, ['42', null, '', 'héllo']);
});
results('CommandComplete, EmptyQueryResponse and the bodiless replies', () => {
  const cc = only(serialize.commandComplete('INSERT 0 3'));
  assert.equal([cc.name, cc.text], ['commandComplete', 'INSERT 0 3']);
  const all = Buffer.concat([
    serialize.emptyQueryResponse(), serialize.parseComplete(), serialize.bindComplete(),
    serialize.closeComplete(), serialize.noData(), serialize.portalSuspended(),
  ]);
  assert.equal(parse(all).map((m) => m.name), ['emptyQuery', 'parseComplete', 'bindComplete', 'closeComplete', 'noData', 'portalSuspended']);
  assert.is(all.length, 6 * 5);
});
results('each call returns a fresh buffer', () => {
  const a = serialize.noData();
  a[0] = 0;
  assert.is(serialize.noData()[0], 0x6e);
});
results.run();
