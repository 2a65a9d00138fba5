// The real `agate` CLI refusing broken config files: `agate check` and `agate start` exit
// non-zero and say which file, which line and key, and what was expected (for a file the config
// names: which key, which path, and what is wrong with it); a valid file passes.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePort } from '../harness/postgres.js';
import { makeTestCa } from '../harness/test-ca.js';
import { runCli, type CliResult } from './agate-process.js';

let dir = '';
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

/** A config that `agate check` accepts (5 lines); broken variants append to it. */
const VALID = `data_dir: ./data
identity:
  issuers:
    - issuer: https://token.actions.githubusercontent.com
      audience: agate
`;

const show = (r: CliResult) => `exit ${r.code}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`;

/** Runs `agate <command> --config path` and expects a refusal (exit 1, message on stderr). */
async function refused(command: 'check' | 'start', path: string): Promise<string> {
  const r = await runCli([command, '--config', path], { timeoutMs: 30_000 });
  assert.is(r.code, 1, `agate ${command} should refuse ${path}: ${show(r)}`);
  assert.ok(r.stderr.startsWith('agate: '), show(r));
  assert.not.match(r.stdout, /valid/, 'nothing on stdout claims success');
  return r.stderr;
}

const config = suite('agate check / agate start with broken configs');

config.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'agate-config-e2e-'));
});
config.after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

config('a valid config: agate check exits 0 and says so', async () => {
  const path = file('valid.yaml', VALID);
  const r = await runCli(['check', '--config', path]);
  assert.is(r.code, 0, show(r));
  assert.is(r.stdout.trim(), `${path}: valid`);
  assert.is(r.stderr, '');
});

config('a wrong type names the file, line, key path and expected type', async () => {
  const path = file('wrong-type.yaml', `${VALID}proxy:\n  verdict_timeout_ms: "soon"\n`);
  for (const command of ['check', 'start'] as const) {
    const err = await refused(command, path);
    assert.match(err, 'invalid configuration');
    assert.match(err, `${path}:7: proxy.verdict_timeout_ms:`);
    assert.match(err, /expected number, received string/);
  }
});

config('an unknown top-level key (typo) is refused, naming the key', async () => {
  const path = file('typo.yaml', `${VALID}polcy:\n  default: allow\n`);
  for (const command of ['check', 'start'] as const) {
    const err = await refused(command, path);
    assert.match(err, path);
    assert.match(err, 'Unrecognized key: "polcy"');
  }
});

config('an unknown nested key names the enclosing key path', async () => {
  const path = file('nested-typo.yaml', `${VALID}proxy:\n  postgres:\n    lisen: 127.0.0.1:6432\n`);
  for (const command of ['check', 'start'] as const) {
    const err = await refused(command, path);
    assert.match(err, `${path}:8: proxy.postgres: Unrecognized key: "lisen"`);
  }
});

config('a bad listen address names the key and the expected HOST:PORT form', async () => {
  const proxy = file('bad-listen.yaml', `${VALID}proxy:\n  postgres:\n    listen: localhost\n`);
  const query = file('bad-query-listen.yaml', `${VALID}query:\n  listen: "127.0.0.1:"\n`);
  for (const command of ['check', 'start'] as const) {
    assert.match(await refused(command, proxy), `${proxy}:8: proxy.postgres.listen: expected HOST:PORT, e.g. 127.0.0.1:6432`);
    assert.match(await refused(command, query), `${query}:7: query.listen: expected HOST:PORT`);
  }
});

config('invalid YAML names the file and the line', async () => {
  const path = file('bad.yaml', `${VALID}policy:\n  rules: [\n    - id: x\n`);
  for (const command of ['check', 'start'] as const) {
    const err = await refused(command, path);
    assert.match(err, new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:8:\\d+: not valid YAML`));
  }
});

config('a missing file is named', async () => {
  const path = join(dir, 'does-not-exist.yaml');
  for (const command of ['check', 'start'] as const) {
    const err = await refused(command, path);
    assert.match(err, `cannot read config file ${path}`);
    assert.match(err, /ENOENT|no such file/);
  }
});

config('no trusted issuer and no dev issuer is refused', async () => {
  const path = file('no-issuers.yaml', 'data_dir: ./data\nidentity:\n  issuers: []\n');
  for (const command of ['check', 'start'] as const) {
    const err = await refused(command, path);
    assert.match(err, `${path}: identity.issuers: expected at least one trusted issuer`);
  }
  // The dev issuer alone is enough for a local trial.
  const dev = file('dev-only.yaml', 'identity:\n  dev_issuer:\n    enabled: true\n');
  const r = await runCli(['check', '--config', dev]);
  assert.is(r.code, 0, show(r));
});

config('start refuses a target whose password variable is unset, before listening', async () => {
  const [pgPort, apiPort] = [await findFreePort(), await findFreePort()];
  const path = file('missing-secret.yaml', `${VALID}proxy:
  postgres:
    listen: 127.0.0.1:${pgPort}
query:
  listen: 127.0.0.1:${apiPort}
targets:
  - name: appdb
    protocol: postgres
    upstream: { host: 127.0.0.1, database: appdb, user: app, password: { env: AGATE_E2E_UNSET_PASSWORD } }
`);
  // `check` validates the shape only; the secret is resolved when Agate starts.
  const checked = await runCli(['check', '--config', path]);
  assert.is(checked.code, 0, show(checked));
  const err = await refused('start', path);
  assert.match(err, 'targets.appdb.upstream.password: environment variable AGATE_E2E_UNSET_PASSWORD is not set');
  assert.not.match(err, 'agate started');
});

config('ssh targets: a bad pinned host key is named by check; a missing key file stops start before listening', async () => {
  const [pgPort, sshPort, apiPort] = [await findFreePort(), await findFreePort(), await findFreePort()];
  const target = (upstream: string) => `${VALID}proxy:
  postgres: { listen: 127.0.0.1:${pgPort} }
  ssh: { listen: 127.0.0.1:${sshPort}, host_key_file: ./ssh_host_key }
query:
  listen: 127.0.0.1:${apiPort}
targets:
  - name: box
    protocol: ssh
    upstream: { host: 127.0.0.1, user: ci, ${upstream} }
`;
  const badKey = await refused('check', file('ssh-bad-key.yaml', target('private_key_file: ./id, host_key: "ssh-ed25519"')));
  assert.match(badKey, /ssh-bad-key\.yaml:\d+: targets\[0\]\.upstream\.host_key: expected a public key/);
  const missing = file('ssh-missing-key.yaml', target('private_key_file: ./no-such-key, host_key: "SHA256:oBms03scSOMynjeHhfy0maNGBsihsf/vsoasUG3hsL0"'));
  for (const command of ['check', 'start'] as const) {
    const err = await refused(command, missing);
    assert.match(err, `${missing}: targets[0].upstream.private_key_file: ${join(dir, 'no-such-key')}: no such file`);
    assert.not.match(err, 'agate started');
  }
});

config('files the config names: check and start refuse a missing or unfitting one with the same lines, before listening', async () => {
  const [pgPort, apiPort] = [await findFreePort(), await findFreePort()];
  const ca = await makeTestCa(dir);
  const other = await ca.client('not-the-server');
  const path = file('files.yaml', `${VALID}proxy:
  postgres: { listen: 127.0.0.1:${pgPort}, tls: { cert: ${JSON.stringify(ca.server.cert)}, key: ${JSON.stringify(other.key)} } }
query:
  listen: 127.0.0.1:${apiPort}
  tls: { cert: ./certs/api.crt, key: ${JSON.stringify(ca.server.key)} }
`);
  const expected = `agate: files the configuration names cannot be used
  ${path}: proxy.postgres.tls.key: ${other.key}: does not match the certificate in proxy.postgres.tls.cert (CN=server)
  ${path}: query.tls.cert: ${join(dir, 'certs', 'api.crt')}: no such file
`;
  for (const command of ['check', 'start'] as const) {
    const err = await refused(command, path);
    assert.is(err, expected, command);
  }
  const listening = await new Promise<boolean>((resolve) => {
    const socket = connect(pgPort, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true))).once('error', () => resolve(false));
  });
  assert.not.ok(listening, 'nothing listens on the proxy port');
  // The text alone (a chart rendered away from the pods that mount the files).
  const textOnly = await runCli(['check', '--no-files', '--config', path]);
  assert.is(textOnly.code, 0, show(textOnly));
  const fixed = file('files-fixed.yaml', readFileSync(path, 'utf8').replace(other.key, ca.server.key).replace('./certs/api.crt', ca.server.cert));
  const ok = await runCli(['check', '--config', fixed]);
  assert.is(ok.code, 0, show(ok));
  assert.is(ok.stderr, '');
});

config('a SAML IdP certificate not there yet (read at each sign-in) is a warning: check exits 0 and says so', async () => {
  const path = file('saml-later.yaml', `${VALID}console:
  saml: { idp_entity_id: "https://idp.example", idp_sso_url: "https://idp.example/sso", idp_cert_file: ./idp.pem, sp_entity_id: agate, acs_url: "https://agate.example/ui/saml/acs" }
  roles: { claim: groups, approver: [approvers] }
`);
  const r = await runCli(['check', '--config', path]);
  assert.is(r.code, 0, show(r));
  assert.is(r.stderr, `agate: warning: ${path}: console.saml.idp_cert_file: ${join(dir, 'idp.pem')}: no such file\n`);
  assert.is(r.stdout.trim(), `${path}: valid`);
});

config('a command without --config is a usage error (exit 2)', async () => {
  const r = await runCli(['check']);
  assert.is(r.code, 2, show(r));
  assert.match(r.stderr, 'agate check needs --config FILE');
});

config.run();
