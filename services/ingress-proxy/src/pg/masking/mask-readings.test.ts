import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { BUILTIN_MASK_SET } from '../../../../../core/src/config.js';
import { initSqlParser } from '../../../../../core/src/sql/analyze.js';
import { Masker } from '../../masking/masker.js';
import { carriesMaskedColumn, copiesMaskedColumn } from './derived-columns.js';
import { MaskReadings } from './mask-readings.js';
import { statementSecrets } from './statement-secrets.js';

const masker = new Masker('default', BUILTIN_MASK_SET);

/** Texts whose answers differ, with numbers that shapes replace, and texts no shape is made of. */
const CORPUS = [
  'SELECT abalance FROM pgbench_accounts WHERE aid = 17',
  'SELECT api_token AS t FROM vault WHERE id = 17',
  'SELECT api_token FROM vault WHERE id = 17',
  'SELECT * FROM vault v(a, b) LIMIT 17',
  "SELECT api_token AS t FROM vault WHERE note = 'x17'",
  'SELECT "api_token" AS t FROM vault WHERE id = 17',
  'FETCH 17 FROM c',
  'SELECT oops FROM WHERE 17',
  'CREATE TABLE loot AS SELECT api_token AS t FROM vault WHERE id = 17',
  'INSERT INTO s SELECT id, note FROM vault WHERE id = 17',
  'EXECUTE p(17);\nPREPARE p AS SELECT api_token AS t FROM vault WHERE id = $1',
];

const readings = suite('MaskReadings');
readings.before(() => initSqlParser());

readings('answers as a fresh reading does, first time and remembered, whatever the numbers', () => {
  const r = new MaskReadings();
  for (const round of [1, 2]) {
    for (const n of ['17', '4711', '0']) {
      for (const base of CORPUS) {
        const sql = base.replaceAll('17', n);
        assert.is(r.carries(sql, masker), carriesMaskedColumn(sql, masker), `carries, round ${round}: ${sql}`);
        assert.equal(r.copies(sql, masker), copiesMaskedColumn(sql, masker), `copies, round ${round}: ${sql}`);
      }
    }
  }
  // The corpus has both answers, so the comparison above could fail.
  assert.ok(r.carries('SELECT api_token AS t FROM vault WHERE id = 9', masker));
  assert.not.ok(r.carries('SELECT api_token FROM vault WHERE id = 9', masker));
  assert.equal(r.copies('CREATE TABLE loot AS SELECT api_token AS t FROM vault WHERE id = 9', masker), { kind: 'copies-column', statement: 'CreateTableAsStmt' });
});

readings('an unparseable text is still masked whole when read again', () => {
  const r = new MaskReadings();
  for (let i = 0; i < 3; i++) assert.ok(r.carries('SELECT oops FROM WHERE', masker));
});

readings('answers belong to the mask set object, not its name', () => {
  const r = new MaskReadings();
  const sql = 'SELECT api_token AS t FROM vault WHERE id = 1';
  assert.ok(r.carries(sql, masker));
  // Another config's set under the same name (a reload) has its own answers.
  const other = new Masker('default', { columns: ['ssn'], detectors: [] });
  assert.not.ok(r.carries(sql, other));
  assert.ok(r.carries(sql, masker));
  assert.ok(r.carries(sql, Masker.union(other, masker)));
});

readings('a set without column rules carries nothing; long texts are read every time, correctly', () => {
  const r = new MaskReadings();
  assert.not.ok(r.carries('SELECT api_token AS t FROM vault', new Masker('detectors', { columns: [], detectors: ['email'] })));
  const long = `SELECT api_token AS t FROM vault WHERE id IN (${Array.from({ length: 2000 }, (_, i) => i).join(', ')})`;
  assert.ok(long.length > 4096);
  assert.ok(r.carries(long, masker));
  assert.ok(r.carries(long, masker));
});

readings('what a statement assigns to a masked column: as a fresh reading, by exact text (offsets differ with the numbers)', () => {
  const r = new MaskReadings();
  const texts = [
    "INSERT INTO vault (id, api_token) VALUES (1, 'a')",
    "INSERT INTO vault (id, api_token) VALUES (12345, 'a')",
    'INSERT INTO vault (id, api_token) VALUES ($1, $2)',
    'UPDATE vault SET api_token = $1 WHERE id = 7',
    "SELECT set_config('app.secret', 'x', false)",
    'COPY vault (id, note) FROM STDIN',
    'UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid = 7',
    'SELECT 1',
  ];
  for (const round of [1, 2]) for (const sql of texts) assert.equal(r.secrets(sql, masker), statementSecrets(sql, masker), `round ${round}: ${sql}`);
  // The two INSERTs differ only in a number, yet their literal starts at another offset.
  assert.equal(r.secrets(texts[0]!, masker)?.literals, [45]);
  assert.equal(r.secrets(texts[1]!, masker)?.literals, [49]);
  assert.equal([...r.secrets(texts[2]!, masker)!.params], [2]);
  assert.is(r.secrets(texts[6]!, masker), undefined);
});

readings.run();
