import { suite } from '../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { referenceRows, referenceTable, UndocumentedKeyError } from '../core/src/config-reference.js';
import { GENERATED_DOCS, readDoc, replaceBetween } from './generated-docs.js';

const docs = suite('generated documents');

for (const doc of GENERATED_DOCS) {
  docs(`${doc.path} is what the code generates (else run npm run docs)`, () => {
    const current = readDoc(doc);
    assert.ok(doc.render(current) === current, `${doc.path} is stale: run \`npm run docs\` and commit the result`);
  });
}

docs('the markers are required, and only the text between them is replaced', () => {
  assert.throws(() => replaceBetween('# no markers\n', 'x.md', 'table\n'), /x\.md: expected the markers/);
  const text = 'intro\n<!-- BEGIN GENERATED from core/src/config.ts by `npm run docs`: edit the schema, not this table -->\nold\n<!-- END GENERATED -->\nafter\n';
  assert.is(replaceBetween(text, 'x.md', 'new\n'), text.replace('old\n', 'new\n'));
});

const reference = suite('configuration reference');

reference('an undocumented key is refused, naming it', () => {
  const schema = z.strictObject({ a: z.strictObject({ b: z.number().default(1) }).prefault({}) });
  try {
    referenceRows(schema);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, UndocumentedKeyError);
    assert.is((err as UndocumentedKeyError).key, 'a.b');
  }
});

reference('type, default and meaning come from the schema; variants are marked', () => {
  const schema = z.strictObject({
    port: z.number().int().min(1).max(65535).default(5432).describe('the port'),
    mode: z.enum(['a', 'b']).optional().meta({ docDefault: 'off' }).describe('a | b'),
    sink: z
      .discriminatedUnion('kind', [
        z.strictObject({ kind: z.literal('file'), path: z.string().describe('where') }),
        z.strictObject({ kind: z.literal('http'), url: z.url().describe('where'), path: z.string().describe('where') }),
      ])
      .default({ kind: 'file', path: 'x' })
      .describe('the sink'),
  });
  assert.is(
    referenceTable(schema),
    [
      '| key | type | default | meaning |',
      '|---|---|---|---|',
      '| `port` | integer 1–65535 | `5432` | the port |',
      '| `mode` | `a` \\| `b` | off | a \\| b |',
      '| `sink.kind` | `file` \\| `http` | `file` | the sink |',
      '| `sink.path` | string | — | where |',
      '| `sink.url` (kind `http`) | URL | — | where |',
      '',
    ].join('\n'),
  );
});

docs.run();
reference.run();
