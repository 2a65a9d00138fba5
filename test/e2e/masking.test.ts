// Secrets in a table read through Agate: the canaries never reach the bus log, the ledger store
// or Agate's logs; and they reach the client only when no policy rule masks its results.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import type { Command, Response } from '../../schemas/src/events.js';
import { serialize } from 'pg-protocol';
import { startAgate, untilAnswered, waitForEvents, type AgateFixture } from './agate-fixture.js';
import { RawClient } from './raw-client.js';

const masking = suite<{ agate: AgateFixture }>('masking: canary secrets through Agate');

/** A random 16-digit Visa-like number with a valid Luhn check digit. */
function cardNumber(): string {
  const digits = [4, ...Array.from({ length: 14 }, () => randomInt(10))];
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits[digits.length - 1 - i]!;
    if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return [...digits, (10 - (sum % 10)) % 10].join('');
}

function awsKey(): string {
  return 'AKIA' + Array.from({ length: 16 }, () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[randomInt(32)]).join('');
}

const keyBody = randomBytes(48).toString('base64');
const jwtSig = randomBytes(24).toString('base64url');
const canary = {
  keyBody,
  pem: `-----BEGIN PRIVATE KEY-----\n${keyBody}\n-----END PRIVATE KEY-----`,
  jwtSig,
  jwt: `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(JSON.stringify({ sub: 'canary' })).toString('base64url')}.${jwtSig}`,
  card: cardNumber(),
  aws: awsKey(),
  token: `tok-${randomBytes(12).toString('hex')}`,
  rolePassword: `pw-${randomBytes(12).toString('hex')}`,
  paramCard: cardNumber(),
  // Canaries the server echoes back inside error messages and details.
  errorKey: awsKey(),
  errorCard: cardNumber(),
  errorDetailKey: awsKey(),
  errorUnmaskedKey: awsKey(),
};
/** The strings that must never appear anywhere Agate writes. */
const needles = [canary.keyBody, canary.jwtSig, canary.card, canary.aws, canary.token, canary.rolePassword, canary.paramCard, canary.errorKey, canary.errorCard, canary.errorDetailKey, canary.errorUnmaskedKey];

masking.before(async (ctx) => {
  ctx.agate = await startAgate({
    policyYaml: `policy:
  default: allow
  rules:
    - id: masked-agents
      action: allow
      mask_client: true
      match: { claims: { masked: "yes" } }
`,
  });
  await ctx.agate.pg.psql(`
CREATE TABLE public.secrets (id int PRIMARY KEY, note text, api_token text);
ALTER TABLE public.secrets OWNER TO ${ctx.agate.pg.users.scram.user};
INSERT INTO public.secrets VALUES
  (1, E'deploy key:\\n${canary.pem.replace(/\n/g, '\\n')}', '${canary.token}'),
  (2, 'session ${canary.jwt} paid with ${canary.card}', null),
  (3, 'aws ${canary.aws} for ops@example.com', 'none');
CREATE TABLE public.uniq (v text UNIQUE);
ALTER TABLE public.uniq OWNER TO ${ctx.agate.pg.users.scram.user};
INSERT INTO public.uniq VALUES ('${canary.errorDetailKey}'), ('${canary.errorCard} '), ('${canary.errorKey} ');
`);
});
masking.after(async (ctx) => {
  await ctx.agate?.cleanup();
});

const text = (rows: unknown) => JSON.stringify(rows);

masking('a client whose rule masks receives no canary, in either query protocol and in COPY', async ({ agate }) => {
  const c = await agate.client({ masked: 'yes' });
  try {
    const extended = await c.query({ text: 'SELECT * FROM secrets WHERE id > $1 ORDER BY id', values: [0] });
    const simple = await c.query('SELECT id, note, api_token FROM secrets ORDER BY id');
    for (const rows of [extended.rows, simple.rows]) {
      for (const n of needles) assert.not.ok(text(rows).includes(n), `client saw a canary`);
      assert.match(rows[0].note, /\[masked:private_key\]/);
      assert.match(rows[1].note, /\[masked:jwt\].*\[masked:card_number\]/);
      assert.match(rows[2].note, /\[masked:cloud_access_key\].*\[masked:email\]/);
      assert.is(rows[0].api_token, '[masked]');
      assert.is(rows[1].api_token, null);
    }
  } finally {
    await c.end();
  }
});

masking('COPY TO STDOUT reaches a masked client with its secrets masked by the detectors', async ({ agate }) => {
  const c = await RawClient.login(agate.host, agate.port, await agate.token({ masked: 'yes' }));
  try {
    c.send(serialize.query('COPY (SELECT id, note FROM secrets ORDER BY id) TO STDOUT'));
    const replies = await c.readyCount(1);
    const data = replies.filter((r) => r.name === 'copyData').map((r) => (r as unknown as { chunk: Buffer }).chunk.toString()).join('');
    assert.is(replies.filter((r) => r.name === 'copyData').length, 3);
    for (const n of needles) assert.not.ok(data.includes(n), 'COPY data carried a canary');
    assert.match(data, /\[masked:private_key\]/);
  } finally {
    c.close();
  }
});

masking('an unmasked client receives the data, but the audit trail still holds no canary', async ({ agate }) => {
  const c = await agate.client();
  try {
    const r = await c.query('SELECT * FROM secrets ORDER BY id');
    assert.ok(text(r.rows).includes(canary.card), 'unmasked clients get the real data');
    await c.query('INSERT INTO secrets VALUES ($1, $2, $3)', [4, `card ${canary.paramCard}`, 'x']);
    await c.query(`SELECT '${canary.aws}' AS literal`);
    const role = await c.query(`CREATE ROLE canary_role LOGIN PASSWORD '${canary.rolePassword}'`).catch((e: Error & { code?: string }) => e);
    assert.is((role as { code?: string }).code, '42501'); // the upstream role may not create roles
  } finally {
    await c.end();
  }
  const events = await waitForEvents(agate, (ev) => ev.some((e) => e.type === 'Command' && e.text.startsWith('CREATE ROLE')) && ev.filter((e) => e.type === 'Response').length >= 6);
  const create = events.find((e): e is Command => e.type === 'Command' && e.text.startsWith('CREATE ROLE'))!;
  assert.is(create.text, "CREATE ROLE canary_role LOGIN PASSWORD '[masked:password]'");
  const insert = events.find((e): e is Command => e.type === 'Command' && e.text.startsWith('INSERT INTO secrets'))!;
  assert.equal(insert.parameters, ['4', 'card [masked:card_number]', 'x']);
  const read = events.find((e): e is Response => e.type === 'Response' && e.columns.includes('api_token') && e.rows === 3)!;
  assert.is(read.sample.length, 3);
  assert.is(read.sample[0]![2], '[masked]');
  assert.ok(read.digest?.startsWith('sha256:'));
});

type PgError = Error & { code?: string; detail?: string };
async function failure(p: Promise<unknown>): Promise<PgError> {
  try {
    await p;
  } catch (e) {
    return e as PgError;
  }
  throw new Error('the statement should have failed');
}

masking('a server error quoting a value is masked for a masked client, in message and detail', async ({ agate }) => {
  const c = await agate.client({ masked: 'yes' });
  try {
    const simple = await failure(c.query(`SELECT '${canary.errorKey}'::int`));
    assert.is(simple.code, '22P02');
    assert.is(simple.message, 'invalid input syntax for type integer: "[masked:cloud_access_key]"');
    // A stored value the cast quotes, at execution (a cast of the bound value itself would fail
    // at Bind, before any verdict, and only echo what the client sent).
    const bound = await failure(c.query({ text: 'SELECT v::int FROM uniq WHERE v LIKE $1', values: ['4%'] }));
    assert.is(bound.code, '22003');
    assert.match(bound.message, /\[masked:card_number\]/, bound.message);
    const duplicate = await failure(c.query({ text: 'INSERT INTO uniq VALUES ($1)', values: [canary.errorDetailKey] }));
    assert.is(duplicate.code, '23505');
    assert.is(duplicate.detail, 'Key (v)=([masked:cloud_access_key]) already exists.');
    for (const e of [simple, bound, duplicate]) for (const n of needles) assert.not.ok(`${e.message} ${e.detail ?? ''}`.includes(n), 'a canary reached the client in an error');
    // The session goes on after the masked errors.
    assert.is((await c.query('SELECT 1 AS one')).rows[0].one, 1);
  } finally {
    await c.end();
  }
});

masking('an unmasked client gets the server error as is; its audit record is masked', async ({ agate }) => {
  const c = await agate.client();
  try {
    const e = await failure(c.query(`SELECT '${canary.errorUnmaskedKey}'::int AS n`));
    assert.ok(e.message.includes(canary.errorUnmaskedKey), 'the server quotes the value (the case this guards)');
  } finally {
    await c.end();
  }
  // One failed cast from the masked client above, one from this one.
  const events = await waitForEvents(agate, (ev) => ev.filter((e) => e.type === 'Response' && e.error_code === '22P02').length >= 2);
  const failed = events.filter((e): e is Response => e.type === 'Response' && e.error_code === '22P02');
  assert.ok(failed.length >= 2);
  for (const r of failed) assert.match(r.error_message ?? '', /\[masked:cloud_access_key\]/);
});

masking('no canary in the bus log, the ledger store or the logs', async ({ agate }) => {
  await untilAnswered(agate); // then stop() drains what the ledger has not stored yet
  const log = agate.busLog();
  for (const n of needles) assert.not.ok(log.includes(Buffer.from(n)), 'canary in the bus log');
  const logs = agate.logs();
  for (const n of needles) assert.not.ok(logs.includes(n), 'canary in the logs');
  await agate.stop();
  const store = EmbeddedStore.open(join(agate.dir, 'data', 'store'));
  try {
    const rows = await store.query<{ payload: string; body: string }>('SELECT payload, body FROM agate.ledger');
    assert.ok(rows.length > 10, `the ledger holds the session (${rows.length} records)`);
    for (const r of rows) {
      const payload = Buffer.from(r.payload, 'base64');
      for (const n of needles) {
        assert.not.ok(r.body.includes(n), 'canary in a ledger body');
        assert.not.ok(payload.includes(Buffer.from(n)), 'canary in a ledger payload');
      }
    }
  } finally {
    await store.close();
  }
});

masking.run();
