import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BUILTIN_MASK_SET } from '../../../../core/src/config.js';
import { luhn } from './detectors.js';
import { Masker } from './masker.js';

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

const columns = suite('Masker.masksColumn: column globs, any case');
columns('the built-in globs match keys in any case, anywhere in the name; exact globs only whole', () => {
  for (const name of ['password', 'DB_PASSWORD', 'userPasswd', 'client-Secret', 'f:token', 'X-Api_Key', 'apikey', 'tls_private_key', 'CARD_NUMBER', 'ssn']) assert.ok(all.masksColumn(name), name);
  for (const name of ['pass', 'secre', 'tokn', 'api-key', 'card_number_hint', 'ssn_last4', 'f:data', 'name', '']) assert.not.ok(all.masksColumn(name), name);
});
columns('a union masks what either set masks; the whole masker every column', () => {
  const pii = new Masker('pii', { columns: ['*email*', 'Phone'], detectors: [] });
  const both = Masker.union(pii, all);
  assert.ok(both.masksColumn('Work_EMAIL'));
  assert.ok(both.masksColumn('PHONE'));
  assert.ok(both.masksColumn('token'));
  assert.not.ok(pii.masksColumn('token'));
  assert.ok(Masker.whole(pii).masksColumn('anything'));
});
columns.run();

