import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { makeTestCa, type TestCa } from '../../test/harness/test-ca.js';
import { parseConfig } from './config.js';
import { assertConfigFiles, configFileProblems, describeFileProblems } from './config-files.js';

interface Ctx { dir: string; ca: TestCa; other: { cert: string; key: string }; sshKey: string }
const files = suite<Ctx>('configFileProblems');

files.before(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-config-files-'));
  ctx.ca = await makeTestCa(ctx.dir);
  ctx.other = await ctx.ca.client('someone-else');
  ctx.sshKey = join(ctx.dir, 'id_ed25519');
  writeFileSync(ctx.sshKey, ssh2.utils.generateKeyPairSync('ed25519').private, { mode: 0o600 });
  writeFileSync(join(ctx.dir, 'secret'), 's3cret\n');
  mkdirSync(join(ctx.dir, 'a-directory'));
});
files.after((ctx) => rmSync(ctx.dir, { recursive: true, force: true }));

const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';

/** A config in `dir` naming a file at each of the usual keys; `at` overrides some paths. */
function configNaming(dir: string, at: Record<string, string> = {}, more = '') {
  const p = (name: string, fallback: string) => JSON.stringify(at[name] ?? fallback);
  return parseConfig(`identity: { dev_issuer: { enabled: true } }
proxy:
  postgres: { tls: { cert: ${p('pg.cert', 'server.crt')}, key: ${p('pg.key', 'server.key')} } }
  ssh: { host_key_file: ${p('host', 'host_key')} }
targets:
  - { name: db, protocol: postgres, upstream: { host: h, database: d, user: u, password: { file: ${p('pw', 'secret')} }, tls: { mode: verify-full, ca: ${p('pg.ca', 'ca.pem')} } } }
  - { name: box, protocol: ssh, upstream: { host: h, user: u, private_key_file: ${p('ssh', 'id_ed25519')}, host_key: "${HOST_KEY}" } }
query: { tls: { cert: ${p('api.cert', 'server.crt')}, key: ${p('api.key', 'server.key')} } }
approvals: { webhooks: [ { url: "https://hooks.example/agate", secret_file: ${p('hook', 'secret')} } ] }
${more}`, join(dir, 'agate.yaml'));
}

files('files that are all there and fit: no problem', (ctx) => {
  assert.equal(configFileProblems(configNaming(ctx.dir)), []);
});

files('each missing file is named by its key and its path', (ctx) => {
  const c = configNaming(join(ctx.dir, 'nowhere'));
  const problems = configFileProblems(c);
  assert.equal(problems.map((p) => p.key), [
    'targets[0].upstream.password.file', 'targets[0].upstream.tls.ca', 'targets[1].upstream.private_key_file',
    'proxy.postgres.tls.cert', 'proxy.postgres.tls.key', 'approvals.webhooks[0].secret_file', 'query.tls.cert', 'query.tls.key',
  ]);
  assert.ok(problems.every((p) => p.fatal && p.problem === 'no such file'), JSON.stringify(problems));
  assert.is(problems[2]!.path, join(ctx.dir, 'nowhere', 'id_ed25519'));
  assert.is(describeFileProblems(c.source, problems)[0], `${c.source}: targets[0].upstream.password.file: ${join(ctx.dir, 'nowhere', 'secret')}: no such file`);
});

files('the files Agate makes itself may be missing: the SSH host key, and the signing key on the embedded bus only', (ctx) => {
  const local = configNaming(ctx.dir, { host: join(ctx.dir, 'not-yet') });
  assert.equal(configFileProblems(local), []);
  const kafka = configNaming(ctx.dir, {}, 'bus: { kind: kafka, brokers: [k:9092] }\nledger: { signing_key: not-yet.key }\n');
  assert.equal(configFileProblems(kafka).map((p) => `${p.key}: ${p.problem}`), ['ledger.signing_key: no such file']);
});

files('a directory, a key where a certificate belongs, a key that is not the certificate\'s', (ctx) => {
  const c = configNaming(ctx.dir, { 'pg.ca': 'a-directory', 'pg.cert': ctx.ca.server.key, 'api.key': ctx.other.key });
  const got = Object.fromEntries(configFileProblems(c).map((p) => [p.key, p.problem]));
  assert.equal(Object.keys(got), ['targets[0].upstream.tls.ca', 'proxy.postgres.tls.cert', 'query.tls.key']);
  assert.is(got['targets[0].upstream.tls.ca'], 'is a directory, not a file');
  assert.match(got['proxy.postgres.tls.cert']!, 'holds no PEM certificate');
  assert.match(got['query.tls.key']!, /^does not match the certificate in query\.tls\.cert \(CN=server\)$/);
});

files('a CA bundle is read whole: a broken second certificate is named', (ctx) => {
  const bundle = join(ctx.dir, 'bundle.pem');
  writeFileSync(bundle, `${readFileSync(ctx.ca.ca, 'utf8')}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`);
  const [p] = configFileProblems(configNaming(ctx.dir, { 'pg.ca': bundle }));
  assert.is(p?.key, 'targets[0].upstream.tls.ca');
  assert.match(p!.problem, /^certificate 2 of 2 does not parse/);
});

files('an SSH key: a public key or garbage is refused, an existing host key must parse', (ctx) => {
  const pub = join(ctx.dir, 'id.pub');
  writeFileSync(pub, `${HOST_KEY} me@host\n`);
  const junk = join(ctx.dir, 'junk');
  writeFileSync(junk, 'not a key\n');
  const got = configFileProblems(configNaming(ctx.dir, { ssh: pub, host: junk })).map((p) => `${p.key}: ${p.problem}`);
  assert.is(got.length, 2, got.join('\n'));
  assert.is(got[0], 'targets[1].upstream.private_key_file: holds a public key; expected the private key');
  assert.match(got[1]!, /^proxy\.ssh\.host_key_file: holds no SSH private key Agate can read/);
});

files('only the files of the roles asked for', (ctx) => {
  const c = configNaming(join(ctx.dir, 'nowhere'));
  assert.equal(configFileProblems(c, ['policy']).map((p) => p.key), ['approvals.webhooks[0].secret_file']);
  assert.equal(configFileProblems(c, ['query']).map((p) => p.key), ['query.tls.cert', 'query.tls.key']);
});

files('a SAML IdP certificate is read at each sign-in: missing is reported, not refused', (ctx) => {
  const saml = `console:
  saml: { idp_entity_id: "https://idp.example", idp_sso_url: "https://idp.example/sso", idp_cert_file: idp.pem, sp_entity_id: agate, acs_url: "https://agate.example/ui/saml/acs",
          sp_signing: { key: { file: ${JSON.stringify(ctx.other.key)} }, cert_file: ${JSON.stringify(ctx.ca.server.cert)} } }
  roles: { claim: groups, approver: [a] }
`;
  const c = configNaming(ctx.dir, {}, saml);
  const problems = configFileProblems(c);
  assert.equal(problems.map((p) => [p.key, p.fatal]), [['console.saml.idp_cert_file', false], ['console.saml.sp_signing.key.file', true]]);
  try {
    assertConfigFiles(c);
    assert.unreachable('a key that is not the certificate\'s is refused');
  } catch (err) {
    assert.is((err as { code: string }).code, 'CONFIG_INVALID');
    assert.is((err as Error).message, `files the configuration names cannot be used\n  ${c.source}: console.saml.sp_signing.key.file: ${ctx.other.key}: does not match the certificate in console.saml.sp_signing.cert_file (CN=server)`);
  }
  const fixed = configNaming(ctx.dir, {}, saml.replace(ctx.other.key, ctx.ca.server.key));
  assert.equal(assertConfigFiles(fixed).map((p) => `${p.key}: ${p.problem}`), ['console.saml.idp_cert_file: no such file']);
});

files.run();
