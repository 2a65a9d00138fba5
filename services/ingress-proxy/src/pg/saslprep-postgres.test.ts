import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { startPostgres, type PostgresServer } from '../../../../test/harness/postgres.js';
import { saslprep } from './saslprep.js';

/*
 * PostgreSQL as the oracle for SASLprep: the server prepares a password with its own SASLprep
 * before deriving the SCRAM verifier it stores. For each password, the StoredKey computed from
 * saslprep() here must equal the one PostgreSQL stored, or Agate could not log in upstream.
 */
const oracle = suite<{ pg: PostgresServer }>('saslprep against PostgreSQL SCRAM verifiers');

oracle.before(async (ctx) => {
  ctx.pg = await startPostgres();
});
oracle.after(async (ctx) => {
  await ctx.pg?.stop();
});

const PASSWORDS: Record<string, string> = {
  'ASCII': 'pencil',
  'no-break space mapped': 'a\u00A0b\u00E9',
  'soft hyphen dropped': 'I\u00ADX\u00E9',
  'NFKC': '\u2168\u00AA',
  'right-to-left throughout': '\u05D0\u00A0\u05D1',
  'Arabic presentation form': '\uFB50\u00A0\uFB50',
  'right-to-left with a left-to-right letter (bidi rule 2: raw)': '\u05D0\u00A0b',
  'right-to-left after a digit (bidi rule 3: raw)': '1\u00A0\u05D0',
  'right-to-left with a letter NFKC makes ASCII (raw)': '\u05D0\u{1D400}\u05D1',
  'prohibited after mapping (raw)': '\u00E9\u00A0\u0007',
};

function storedKey(password: string, salt: Buffer, iterations: number): string {
  const salted = pbkdf2Sync(saslprep(password), salt, iterations, 32, 'sha256');
  return createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest('base64');
}

for (const [name, password] of Object.entries(PASSWORDS)) {
  oracle(name, async (ctx) => {
    const verifier = await ctx.pg.psql(
      `SET password_encryption = 'scram-sha-256'; ALTER ROLE agate_scram PASSWORD $pw$${password}$pw$; SELECT rolpassword FROM pg_authid WHERE rolname = 'agate_scram'`,
    );
    const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):/.exec(verifier.trim());
    assert.ok(m, `a SCRAM verifier: ${verifier}`);
    assert.is(storedKey(password, Buffer.from(m![2]!, 'base64'), Number(m![1])), m![3]);
  });
}

oracle('the raw-fallback cases are ones where preparing would change the password', () => {
  for (const [name, password] of Object.entries(PASSWORDS)) {
    if (!name.endsWith('(raw)')) continue;
    assert.is(saslprep(password), password, name);
    assert.is.not(password.replace(/\u00A0/g, ' ').normalize('NFKC'), password, name);
  }
});

oracle.run();
