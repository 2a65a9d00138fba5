import { existsSync } from 'node:fs';
import { test } from './suite.js';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { findFreePort, startPostgres, type PgUserKey, type PostgresServer } from './postgres.js';

// Each test owns its server and stops it even when an assertion fails.
async function withPostgres(fn: (srv: PostgresServer) => Promise<void>): Promise<void> {
  const srv = await startPostgres();
  try {
    await fn(srv);
  } finally {
    await srv.stop();
  }
}

/** Connects over TCP and records which password challenge the server sent. */
async function connect(srv: PostgresServer, user: string, password: string) {
  const client = new pg.Client({ host: srv.host, port: srv.port, user, password, database: srv.database });
  let challenge = 'none';
  client.connection.once('authenticationCleartextPassword', () => (challenge = 'password'));
  client.connection.once('authenticationMD5Password', () => (challenge = 'md5'));
  client.connection.once('authenticationSASL', () => (challenge = 'scram-sha-256'));
  client.on('error', () => {}); // late socket errors after a failed login
  try {
    await client.connect();
    return { client, challenge };
  } catch (err) {
    await client.end().catch(() => {});
    throw err;
  }
}

/** Resolves with the error `p` rejects with; fails the test if it resolves. */
async function failure(p: Promise<unknown>, what: string): Promise<Error & { code?: string }> {
  let value: unknown;
  try {
    value = await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  await (value as { client?: pg.Client })?.client?.end();
  assert.unreachable(`expected failure: ${what}`);
  throw new Error('unreachable'); // for the type checker; unreachable() already threw
}

const METHOD: Record<Exclude<PgUserKey, 'trust'>, string> = { scram: 'scram-sha-256', md5: 'md5', plain: 'password' };

test('findFreePort returns a usable loopback port', async () => {
  const port = await findFreePort();
  assert.ok(port > 0 && port < 65536);
});

test('each role logs in over TCP with its own auth method; wrong passwords fail', async () => {
  await withPostgres(async (srv) => {
    assert.is(srv.host, '127.0.0.1');
    for (const [i, key] of (['scram', 'md5', 'plain'] as const).entries()) {
      const { user, password } = srv.users[key];
      const { client, challenge } = await connect(srv, user, password);
      try {
        assert.is(challenge, METHOD[key], `${user} auth challenge`);
        const r = await client.query('SELECT current_user AS u, name FROM public.items WHERE id = 1');
        assert.equal(r.rows, [{ u: user, name: 'alpha' }]);
        await client.query(`INSERT INTO public.items VALUES ($1, $2)`, [100 + i, user]);
      } finally {
        await client.end();
      }
      const err = await failure(connect(srv, user, password + 'x'), `${user} with a wrong password`);
      assert.is(err.code, '28P01', `${user}: ${err.message}`);
    }
    assert.is(await srv.psql('SELECT name FROM public.items WHERE id >= 100 ORDER BY id'), 'agate_scram\nagate_md5\nagate_plain');
    // The superuser is trust-on-socket only; TCP has no pg_hba entry for it.
    const err = await failure(connect(srv, 'postgres', 'anything'), 'superuser over TCP');
    assert.is(err.code, '28000', err.message);
  });
});

test('psql helper returns rows and stored verifiers match the auth methods', async () => {
  await withPostgres(async (srv) => {
    assert.is(await srv.psql('SELECT id, name FROM public.items ORDER BY id'), '1|alpha\n2|beta\n3|gamma');
    const verifiers = await srv.psql(
      `SELECT rolname, split_part(rolpassword, '$', 1) FROM pg_authid WHERE rolname LIKE 'agate_%' ORDER BY rolname`,
    );
    assert.ok(/^agate_md5\|md5[0-9a-f]{32}$/m.test(verifiers), verifiers);
    assert.ok(/^agate_plain\|SCRAM-SHA-256$/m.test(verifiers), verifiers);
    assert.ok(/^agate_scram\|SCRAM-SHA-256$/m.test(verifiers), verifiers);
    assert.is(await srv.psql('SELECT current_user', 'md5'), 'agate_md5');
    assert.is(await srv.psql('SELECT count(*) FROM public.items', 'agate_plain'), '3');
    const err = await failure(srv.psql('SELECT * FROM no_such_table'), 'psql with a bad query');
    assert.match(err.message, /no_such_table/);
  });
});

test('stop shuts the server down and removes its directory', async () => {
  const srv = await startPostgres();
  try {
    assert.ok(existsSync(srv.dataDir));
  } finally {
    await srv.stop();
  }
  assert.not.ok(existsSync(srv.dataDir));
  assert.not.ok(existsSync(srv.rootDir));
  await srv.stop(); // idempotent
  const client = new pg.Client({ host: srv.host, port: srv.port, user: srv.users.scram.user, password: srv.users.scram.password });
  client.on('error', () => {});
  const err = await failure(client.connect(), 'connect after stop');
  assert.is(err.code, 'ECONNREFUSED');
  await client.end().catch(() => {});
});

test.run();
