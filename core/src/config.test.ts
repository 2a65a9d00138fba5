import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig } from './config.js';

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
  assert.equal(c.bus, { kind: 'local', fsync: true });
});

parse('names the file, line, key and expectation for a wrong type', () => {
  const msg = errorOf(`${minimal}proxy:\n  verdict_timeout_ms: soon\n`);
  assert.match(msg, 'agate.yaml:3: proxy.verdict_timeout_ms: Invalid input: expected number');
});

parse('refuses unknown keys (typos)', () => {
  assert.match(errorOf(`${minimal}polcy: {}\n`), /Unrecognized key: "polcy"/);
});

parse('names the rule index and the field for a bad rule', () => {
  const msg = errorOf(`${minimal}policy:\n  rules:\n    - id: x\n      action: maybe\n`);
  assert.match(msg, 'policy.rules[0].action');
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
  assert.is(t.targets[0]!.upstream.tls.ca, '/etc/agate/ca.pem');
  assert.is(t.targets[0]!.mask_client, true);
});

parse.run();
