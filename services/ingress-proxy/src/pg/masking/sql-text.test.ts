import { test } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BUILTIN_MASK_SET } from '../../../../../core/src/config.js';
import { analyzeSql, initSqlParser } from '../../../../../core/src/sql/analyze.js';
import { Masker } from '../../masking/masker.js';
import { maskSqlText } from './sql-text.js';

const masker = new Masker('default', BUILTIN_MASK_SET);

// Each spelling PostgreSQL accepts for the password of CREATE/ALTER ROLE/USER.
const CASES: [string, string][] = [
  ["CREATE ROLE r PASSWORD 'CANARY1'", 'CANARY1'],
  ["CREATE ROLE r LOGIN PASSWORD U&'\\0043ANARY2'", '0043ANARY2'],
  ["CREATE ROLE r PASSWORD U&'!0043ANARY3' UESCAPE '!'", '0043ANARY3'],
  ["ALTER ROLE r PASSWORD E'CAN\\'ARY4'", "ARY4"],
  ["ALTER USER r WITH ENCRYPTED PASSWORD $$CANARY5$$", 'CANARY5'],
  ["ALTER USER r PASSWORD $pw$CANARY6$pw$ VALID UNTIL 'infinity'", 'CANARY6'],
  ["alter user r password /* c */ 'CAN''ARY7'", "ARY7"],
  ["ALTER ROLE r PASSWORD 'CANARY8a'\n  'CANARY8b'", 'CANARY8b'],
  ["DO $$BEGIN EXECUTE 'ALTER ROLE r PASSWORD ''CANARY9'''; END$$", 'CANARY9'],
  ["CREATE USER r PASSWORD e'CANARY10'", 'CANARY10'],
  ["CREATE USER r PASSWORD N'CANARY11'", 'CANARY11'],
];

test('every PASSWORD literal spelling is masked, and the statement still parses', async () => {
  await initSqlParser();
  for (const [sql, canary] of CASES) {
    const { text, count } = maskSqlText(sql, masker);
    assert.not.ok(text.includes(canary), `${sql} -> ${text}`);
    assert.ok(count >= 1, sql);
    assert.ok(analyzeSql(text).ok, `still parses: ${text}`);
  }
});

test('a password quoted inside a single-quoted string is replaced with the same quoting', async () => {
  await initSqlParser();
  const { text } = maskSqlText("SELECT dblink_exec('ALTER ROLE r PASSWORD ''CANARY13''')", masker);
  assert.is(text, "SELECT dblink_exec('ALTER ROLE r PASSWORD ''[masked:password]''')");
  assert.ok(analyzeSql(text).ok);
});

test('PASSWORD NULL and ordinary uses of the word are left alone', () => {
  assert.is(maskSqlText('ALTER ROLE r PASSWORD NULL', masker).text, 'ALTER ROLE r PASSWORD NULL');
  assert.is(maskSqlText('SELECT password FROM accounts', masker).text, 'SELECT password FROM accounts');
});

test('a connection string password is masked', () => {
  const { text } = maskSqlText("CREATE SUBSCRIPTION s CONNECTION 'host=db password=CANARY12 dbname=x' PUBLICATION p", masker);
  assert.not.ok(text.includes('CANARY12'), text);
});

test('role passwords and connection-string passwords are masked; the statement still reads the same', () => {
  assert.is(maskSqlText("ALTER ROLE app WITH PASSWORD 'it''s secret' VALID UNTIL 'infinity'", masker).text, "ALTER ROLE app WITH PASSWORD '[masked:password]' VALID UNTIL 'infinity'");
  assert.is(maskSqlText('create user x password $$p$$', masker).text, "create user x password '[masked:password]'");
  assert.is(maskSqlText("CREATE SUBSCRIPTION s CONNECTION 'host=h password=hunter2 dbname=d' PUBLICATION p", masker).text, "CREATE SUBSCRIPTION s CONNECTION 'host=h password=[masked:password] dbname=d' PUBLICATION p");
  assert.is(maskSqlText('SELECT password FROM users', masker).text, 'SELECT password FROM users');
});

test.run();
