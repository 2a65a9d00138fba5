import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BUILTIN_MASK_SET } from '../../../../../core/src/config.js';
import type { Column } from '../backend-decode.js';
import { decodeDataRow } from '../backend-decode.js';
import { serialize } from '../backend-serializer.js';
import { maskDataRow, MaskingError } from './data-row.js';
import { luhn } from './detectors.js';
import { Masker } from './masker.js';
import { maskSqlText } from './sql-text.js';

const all = new Masker('default', BUILTIN_MASK_SET);

const detectors = suite('Masker.maskText: value detectors');
detectors('each detector replaces only the secret span', () => {
  const cases: [string, string][] = [
    ['k: -----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY----- end', 'k: [masked:private_key] end'],
    ['t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln!', 't=[masked:jwt]!'],
    ['id AKIAABCDEFGHIJKLMNOP ok', 'id [masked:cloud_access_key] ok'],
    ['$2b$12$' + 'a'.repeat(53), '[masked:password_hash]'],
    ['md5' + 'a'.repeat(32), '[masked:password_hash]'],
    ['card 4111 1111 1111 1111.', 'card [masked:card_number].'],
    ['mail ops@example.com now', 'mail [masked:email] now'],
    ['host=db port=5432 password=CANARY-cs1 dbname=app', 'host=db port=5432 password=[masked:connection_string] dbname=app'],
    ["host=db password='CAN ARY\\'cs2' user=x", 'host=db password=[masked:connection_string] user=x'],
    ['Server=db;Password=CANARY-cs3;Database=app', 'Server=db;Password=[masked:connection_string];Database=app'],
    ['postgresql://app:CANARY-cs4@db:5432/app?sslmode=require', 'postgresql://app:[masked:connection_string]@db:5432/app?sslmode=require'],
  ];
  for (const [input, expected] of cases) assert.is(all.maskText(input).text, expected, input);
});
detectors('a digit run failing the Luhn check is left alone; a cut PEM block is masked to the end', () => {
  assert.is(all.maskText('order 4111111111111112').text, 'order 4111111111111112');
  assert.ok(luhn('4111111111111111'));
  assert.is(all.maskText('-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqh').text, '[masked:private_key]');
});
detectors('a UUID or other dash-grouped hex is not a card number; a card beside one still is', () => {
  // 11111111-2222-3333-4444-555555555555: its digits across dashes pass the Luhn check.
  for (const uuid of ['11111111-2222-3333-4444-555555555555', '41111111-1111-1111-1111-111111111111', 'a4111111-1111-1111-1111-111111111111', '00000000-0000-0000-0000-000000000000']) {
    assert.is(all.maskText(`id ${uuid} ok`).text, `id ${uuid} ok`, uuid);
  }
  assert.is(all.maskText('id 11111111-2222-3333-4444-555555555555 paid 4111-1111-1111-1111').text, 'id 11111111-2222-3333-4444-555555555555 paid [masked:card_number]');
  assert.is(all.maskText('4111111111111111').text, '[masked:card_number]');
  assert.is(all.maskText('(4111 1111 1111 1111)').text, '([masked:card_number])');
});
detectors.run();

const rows = suite('maskDataRow');
const col = (name: string, typeOid = 25, format = 0): Column => ({ name, tableOid: 0, columnAttr: 0, typeOid, typeSize: -1, typeModifier: -1, format });
rows('masks by column name and by detector, rebuilding every length', () => {
  const frame = serialize.dataRow([Buffer.from('7'), Buffer.from('s3cr3t'), Buffer.from('hi ops@example.com'), null]);
  const out = maskDataRow(frame, [col('id', 23), col('api_token'), col('note'), col('x')], all);
  assert.is(out.masked, 2);
  assert.equal(decodeDataRow(out.frame).map((v) => v?.toString() ?? null), ['7', '[masked]', 'hi [masked:email]', null]);
  assert.is(out.frame.readInt32BE(1), out.frame.length - 1);
});
rows('a masked non-text column becomes NULL; an untouched row is passed through as is', () => {
  const frame = serialize.dataRow([Buffer.from('4111111111111111')]);
  assert.equal(decodeDataRow(maskDataRow(frame, [col('card_number', 20)], all).frame), [null]);
  const plain = serialize.dataRow([Buffer.from('hello')]);
  assert.is(maskDataRow(plain, [col('greeting')], all).frame, plain);
});
rows('fails closed: a row that does not match its description, or unknown columns with column rules', () => {
  const frame = serialize.dataRow([Buffer.from('a'), Buffer.from('b')]);
  assert.throws(() => maskDataRow(frame, [col('one')], all), (e: unknown) => e instanceof MaskingError);
  assert.throws(() => maskDataRow(frame, undefined, all), (e: unknown) => e instanceof MaskingError);
  assert.throws(() => maskDataRow(frame.subarray(0, 9), [col('a'), col('b')], all), (e: unknown) => e instanceof MaskingError);
});
rows.run();

const sql = suite('maskSqlText');
sql('role passwords and connection-string passwords are masked; the statement still reads the same', () => {
  assert.is(maskSqlText("ALTER ROLE app WITH PASSWORD 'it''s secret' VALID UNTIL 'infinity'", all).text, "ALTER ROLE app WITH PASSWORD '[masked:password]' VALID UNTIL 'infinity'");
  assert.is(maskSqlText('create user x password $$p$$', all).text, "create user x password '[masked:password]'");
  assert.is(maskSqlText("CREATE SUBSCRIPTION s CONNECTION 'host=h password=hunter2 dbname=d' PUBLICATION p", all).text, "CREATE SUBSCRIPTION s CONNECTION 'host=h password=[masked:password] dbname=d' PUBLICATION p");
  assert.is(maskSqlText('SELECT password FROM users', all).text, 'SELECT password FROM users');
});
sql.run();
