import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { parseConfig } from './config.js';
import { tracingFromConfig } from './tracing/tracing.js';

const errorOf = (yaml: string): string => {
  try {
    parseConfig(yaml, 'agate.yaml');
  } catch (err) {
    assert.is((err as { code: string }).code, 'CONFIG_INVALID');
    return (err as Error).message;
  }
  throw new Error('expected the config to be refused');
};
const minimal = 'identity: { dev_issuer: { enabled: true } }\n';

const parse = suite('parseConfig');

parse('applies defaults to a minimal config', () => {
  const c = parseConfig(minimal, '/etc/agate/agate.yaml');
  assert.is(c.policy.default, 'deny');
  assert.is(c.proxy.verdict_timeout_ms, 2000);
  assert.is(c.data_dir, '/etc/agate/.agate');
  assert.equal(c.bus, { kind: 'local', fsync: true, segment_bytes: 64 * 1024 * 1024, retention_ms: 3_600_000 });
});

parse('a webhook secret_file is resolved against the config file, like every other path in it', () => {
  const c = parseConfig(`${minimal}approvals: { webhooks: [ { url: "https://hooks.example/agate", secret_file: secrets/hook } ] }\n`, '/etc/agate/agate.yaml');
  assert.is(c.approvals.webhooks[0]?.secret_file, '/etc/agate/secrets/hook');
});

parse('names the file, line, key and expectation for a wrong type', () => {
  const msg = errorOf(`${minimal}proxy:\n  verdict_timeout_ms: soon\n`);
  assert.match(msg, 'agate.yaml:3: proxy.verdict_timeout_ms: Invalid input: expected number');
});

parse('a secured backbone: TLS and SASL to Kafka, registry credentials, TLS to ClickHouse and on the query API', () => {
  const c = parseConfig(`${minimal}bus:
  kind: kafka
  brokers: [kafka-1:9093]
  tls: { ca: certs/ca.pem }
  sasl: { mechanism: scram-sha-512, username: agate, password: { env: KAFKA_PASSWORD } }
  schema_registry: { url: https://registry:8081, username: agate, password: { file: secrets/registry } }
store: { kind: clickhouse, url: https://ch:8443, tls: { ca: certs/ca.pem, cert: certs/agate.crt, key: certs/agate.key } }
query: { tls: { cert: certs/api.crt, key: certs/api.key } }
`, '/etc/agate/agate.yaml');
  assert.ok(c.bus.kind === 'kafka' && c.bus.tls?.ca === '/etc/agate/certs/ca.pem' && c.bus.sasl?.mechanism === 'scram-sha-512');
  assert.ok(c.bus.kind === 'kafka' && c.bus.schema_registry?.password?.file === '/etc/agate/secrets/registry');
  assert.ok(c.store.kind === 'clickhouse' && c.store.tls?.key === '/etc/agate/certs/agate.key');
  assert.equal(c.query.tls, { cert: '/etc/agate/certs/api.crt', key: '/etc/agate/certs/api.key' });
});

parse('refuses SASL PLAIN without TLS, half a client certificate, and store TLS over http', () => {
  const kafka = `${minimal}bus:\n  kind: kafka\n  brokers: [k:9092]\n`;
  assert.match(errorOf(`${kafka}  sasl: { mechanism: plain, username: a, password: { value: p } }\n`), /plain sends the password in the clear/);
  assert.match(errorOf(`${kafka}  tls: { cert: a.crt }\n`), /both cert and key/);
  assert.match(errorOf(`${kafka}  schema_registry: { url: http://r, username: a, token: { value: t } }\n`), /both username and password|not both/);
  assert.match(errorOf(`${minimal}store: { kind: clickhouse, url: http://ch:8123, tls: { ca: ca.pem } }\n`), /store.tls: needs an https:\/\/ store.url/);
});

parse('refuses unknown keys (typos)', () => {
  assert.match(errorOf(`${minimal}polcy: {}\n`), /Unrecognized key: "polcy"/);
});

parse('names the rule index and the field for a bad rule', () => {
  const msg = errorOf(`${minimal}policy:\n  rules:\n    - id: x\n      action: maybe\n`);
  assert.match(msg, 'policy.rules[0].action');
});

parse('match.sql: effect classes and read/written table globs; an unknown class or an empty condition is refused', () => {
  const c = parseConfig(`${minimal}policy:\n  rules:\n    - { id: r, action: deny, match: { sql: { effects: [destroy, privilege], tables_written: [users], tables_read: [secrets] } } }\n`, 'agate.yaml');
  assert.equal(c.policy.rules[0]!.match.sql, { effects: ['destroy', 'privilege'], tables_written: ['users'], tables_read: ['secrets'] });
  assert.match(errorOf(`${minimal}policy:\n  rules:\n    - { id: r, action: deny, match: { sql: { effects: [drop] } } }\n`), 'policy.rules[0].match.sql.effects[0]');
  assert.match(errorOf(`${minimal}policy:\n  rules:\n    - { id: r, action: deny, match: { sql: {} } }\n`), 'expected at least one of statements, effects, tables, tables_read, tables_written, without_where');
});

parse('ops: off unless listen is set; a drain timeout by default; a bad address is refused', () => {
  assert.equal(parseConfig(minimal, 'agate.yaml').ops, { drain_timeout_ms: 25_000 });
  assert.equal(parseConfig(`${minimal}ops: { listen: "0.0.0.0:9464", drain_timeout_ms: 5000 }\n`, 'agate.yaml').ops, { listen: '0.0.0.0:9464', drain_timeout_ms: 5000 });
  assert.match(errorOf(`${minimal}ops: { listen: 9464 }\n`), 'ops.listen');
});

parse('telemetry: trace export off unless an OTLP endpoint is set; only http(s) URLs; headers are secret references', () => {
  const off = parseConfig(minimal, 'agate.yaml');
  assert.equal(off.telemetry, { otlp: { headers: {}, service_name: 'agate' } });
  assert.is(tracingFromConfig(off.telemetry, 'i'), undefined, 'no Tracing at all when off');
  const on = parseConfig(`${minimal}telemetry: { otlp: { endpoint: "http://collector:4318", headers: { authorization: { env: OTLP_AUTH } }, service_name: edge } }\n`, 'agate.yaml');
  assert.equal(on.telemetry.otlp, { endpoint: 'http://collector:4318', headers: { authorization: { env: 'OTLP_AUTH' } }, service_name: 'edge' });
  assert.match(errorOf(`${minimal}telemetry: { otlp: { endpoint: "grpc://collector:4317" } }\n`), 'telemetry.otlp.endpoint');
  assert.match(errorOf(`${minimal}telemetry: { otlp: { endpoint: "http://c:4318", sampler: always } }\n`), 'sampler');
  assert.throws(() => tracingFromConfig(on.telemetry, 'i'), /telemetry\.otlp\.headers\.authorization: environment variable OTLP_AUTH is not set/);
});

parse('kafka: min_insync_replicas above the replication factor is refused', () => {
  const kafka = (extra: string) => `${minimal}bus: { kind: kafka, brokers: ["k:9092"], replication_factor: 2${extra} }\n`;
  assert.is(parseConfig(kafka(''), 'agate.yaml').bus.kind, 'kafka');
  assert.match(errorOf(kafka(', min_insync_replicas: 3')), /bus\.min_insync_replicas: 3 is more than bus\.replication_factor \(2\)/);
});

parse('reports YAML syntax errors with a position', () => {
  assert.match(errorOf('identity: [\n'), /agate\.yaml:\d+:\d+: not valid YAML/);
});

parse('requires a trusted issuer unless the dev issuer is on', () => {
  assert.match(errorOf('identity: {}\n'), 'identity.issuers: expected at least one trusted issuer');
});

parse('refuses duplicate target names and a secret with two sources', () => {
  const target = '  - { name: a, protocol: postgres, upstream: { host: h, database: d, user: u, password: { env: X } } }\n';
  assert.match(errorOf(`${minimal}targets:\n${target}${target}`), 'duplicate target name "a"');
  assert.match(errorOf(`${minimal}targets:\n  - { name: a, protocol: postgres, upstream: { host: h, database: d, user: u, password: { env: X, value: y } } }\n`), 'expected exactly one of value, env, file');
});

parse('masking: the built-in default set exists; references to sets are checked', () => {
  const c = parseConfig(minimal, 'agate.yaml');
  assert.ok(c.masking.sets.default!.detectors.includes('card_number'));
  assert.is(c.masking.audit, 'default');
  assert.match(errorOf(minimal + 'masking: { audit: nope }\n'), /masking\.audit: no mask set named "nope"/);
  assert.match(errorOf(minimal + 'policy: { rules: [ { id: r, action: deny, mask_client: true } ] }\n'), /only an allow rule can mask/);
  assert.match(errorOf(minimal + 'masking: { sets: { pii: { detectors: [ssn_us] } } }\n'), /masking\.sets\.pii\.detectors\[0\]/);
  const t = parseConfig(minimal + 'targets: [ { name: a, protocol: postgres, mask_client: true, upstream: { host: h, database: d, user: u, password: { value: p }, tls: { mode: verify-full, ca: ca.pem } } } ]\n', '/etc/agate/agate.yaml');
  const target = t.targets[0]!;
  assert.ok(target.protocol === 'postgres');
  assert.is(target.upstream.tls.ca, '/etc/agate/ca.pem');
  assert.is(target.mask_client, true);
});

parse('ssh targets: a pinned host key and exactly one credential; the proxy section resolves its key file', () => {
  const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGKx0ejwYS2OS8c1pN0mVnQbzE8bbx2OvNwAjfrlqhXa';
  const ssh = (upstream: string) => `${minimal}proxy: { ssh: { host_key_file: keys/host } }\ntargets: [ { name: box, protocol: ssh, upstream: { host: h, user: u, ${upstream} } } ]\n`;
  const c = parseConfig(ssh(`private_key_file: id_ed25519, host_key: "${key}"`), '/etc/agate/agate.yaml');
  const target = c.targets[0]!;
  assert.ok(target.protocol === 'ssh');
  assert.is(target.upstream.port, 22);
  assert.is(target.upstream.private_key_file, '/etc/agate/id_ed25519');
  assert.is(c.proxy.ssh?.host_key_file, '/etc/agate/keys/host');
  assert.is(c.proxy.ssh?.listen, '127.0.0.1:2222');
  assert.match(errorOf(ssh(`host_key: "${key}"`)), /exactly one of private_key_file, password/);
  assert.match(errorOf(ssh('private_key_file: k, host_key: "not a key"')), /upstream\.host_key/);
  parseConfig(ssh('password: { env: X }, host_key: "SHA256:oBms03scSOMynjeHhfy0maNGBsihsf/vsoasUG3hsL0"'), 'agate.yaml');
});

parse('console: an OIDC client whose redirect is /ui/callback, https unless on loopback, roles like query.roles', () => {
  const consoleYaml = (issuer: string, redirect = 'https://agate.example/ui/callback') =>
    `${minimal}console:\n  oidc: { issuer: "${issuer}", client_id: c, client_secret: { file: secret }, redirect_url: "${redirect}" }\n`;
  const c = parseConfig(consoleYaml('https://sso.example/realms/a'), '/etc/agate/agate.yaml');
  assert.is(c.console?.oidc?.client_secret?.file, '/etc/agate/secret');
  assert.equal(c.console?.oidc?.scopes, ['openid', 'profile', 'email']);
  assert.is(c.console?.roles.default_role, 'none');
  assert.is(c.console?.session_ttl_s, 28800);
  parseConfig(consoleYaml('http://127.0.0.1:8080/realms/a'), 'agate.yaml');
  assert.match(errorOf(consoleYaml('http://sso.example/realms/a')), 'console.oidc.issuer: expected an https:// URL');
  assert.match(errorOf(consoleYaml('https://sso.example/realms/a', 'https://agate.example/callback')), 'console.oidc.redirect_url');
  assert.match(errorOf(`${minimal}console:\n  oidc: { issuer: "https://sso.example", client_id: c, redirect_url: "https://a.example/ui/callback", extra: 1 }\n`), 'extra');
  assert.is(parseConfig(minimal, 'agate.yaml').console, undefined);
});

parse('console: a SAML identity provider beside or instead of OIDC; at least one is required', () => {
  const saml = (sso = 'https://idp.example/sso', acs = 'https://agate.example/ui/saml/acs') =>
    `${minimal}console:\n  saml: { idp_entity_id: "https://idp.example", idp_sso_url: "${sso}", idp_cert_file: idp.pem, sp_entity_id: agate, acs_url: "${acs}" }\n`;
  const c = parseConfig(saml(), '/etc/agate/agate.yaml');
  assert.is(c.console?.saml?.idp_cert_file, '/etc/agate/idp.pem');
  assert.is(c.console?.saml?.clock_skew_s, 60);
  assert.is(c.console?.oidc, undefined);
  parseConfig(saml('http://127.0.0.1:8080/sso', 'http://127.0.0.1:8000/ui/saml/acs'), 'agate.yaml');
  assert.match(errorOf(saml('http://idp.example/sso')), 'console.saml.idp_sso_url: expected an https:// URL');
  assert.match(errorOf(saml(undefined, 'https://agate.example/acs')), 'console.saml.acs_url');
  assert.match(errorOf(`${minimal}console:\n  session_ttl_s: 60\n`), 'console: expected an identity provider');
});

parse('console: SAML by metadata URL, and single logout needs a signing key and the IdP\'s SLO location', () => {
  const base = 'idp_entity_id: "https://idp.example", sp_entity_id: agate, acs_url: "https://agate.example/ui/saml/acs"';
  const saml = (more: string) => `${minimal}console:\n  saml: { ${base}, ${more} }\n`;
  const signing = 'sp_signing: { key: { file: sp.key }, cert_file: sp.crt }';
  const c = parseConfig(saml(`idp_metadata_url: "https://idp.example/md", slo_url: "https://agate.example/ui/saml/slo", ${signing}`), '/etc/agate/agate.yaml');
  assert.is(c.console?.saml?.metadata_refresh_s, 3600);
  assert.is(c.console?.saml?.sp_signing?.cert_file, '/etc/agate/sp.crt');
  assert.is(c.console?.saml?.sp_signing?.key.file, '/etc/agate/sp.key');
  assert.match(errorOf(saml('idp_sso_url: "https://idp.example/sso"')), 'expected idp_metadata_url, or idp_sso_url with idp_cert_file');
  assert.match(errorOf(saml('idp_metadata_url: "http://idp.example/md"')), 'console.saml.idp_metadata_url: expected an https:// URL');
  assert.match(errorOf(saml('idp_metadata_url: "https://idp.example/md", slo_url: "https://agate.example/ui/saml/slo"')), 'expected sp_signing with slo_url');
  assert.match(errorOf(saml(`idp_sso_url: "https://idp.example/sso", idp_cert_file: idp.pem, slo_url: "https://agate.example/ui/saml/slo", ${signing}`)), 'expected idp_slo_url or idp_metadata_url with slo_url');
  assert.match(errorOf(saml(`idp_metadata_url: "https://idp.example/md", slo_url: "https://agate.example/logout", ${signing}`)), 'console.saml.slo_url');
});

parse.run();
