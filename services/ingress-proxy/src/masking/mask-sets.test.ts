import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { parseConfig, type MaskingConfig } from '../../../../core/src/config.js';
import { AgateError } from '../../../../core/src/errors.js';
import { MaskSets } from './mask-sets.js';

const minimal = 'identity: { dev_issuer: { enabled: true } }\n';
const refusal = (fn: () => unknown): AgateError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof AgateError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
};

const compile = suite('MaskSets.compile');

compile('one compiled object per config: the audit set, every named set, and the client set a target names', () => {
  const config = parseConfig(`${minimal}masking:\n  audit: pii\n  sets:\n    pii: { columns: ['*email*'], detectors: [jwt] }\n`, 'agate.yaml');
  const masks = MaskSets.compile(config.masking, config.source);
  assert.is(masks.audit, masks.byName.get('pii'));
  assert.ok(masks.byName.get('default') !== undefined, 'the built-in default set is compiled too');
  assert.ok(masks.audit.masksColumn('Work_Email'));
  assert.not.ok(masks.audit.masksColumn('password'), 'pii names no password column');
  assert.is(masks.clientSet(true), 'pii');
  assert.is(masks.clientSet('default'), 'default');
  assert.is(masks.clientSet(false), undefined);
});

compile('is immutable once built', () => {
  const masks = MaskSets.compile(parseConfig(minimal, 'agate.yaml').masking, 'agate.yaml');
  assert.throws(() => {
    (masks as { audit: unknown }).audit = undefined;
  }, TypeError);
  assert.is((masks.byName as Partial<Map<string, unknown>>).set, undefined, 'the sets by name are a view without set');
  assert.equal([...masks.byName.keys()], ['default']);
});

compile('an audit set that is not among the sets fails start, naming the key', () => {
  const masking: MaskingConfig = { sets: { default: { columns: [], detectors: [] } }, audit: 'pii' };
  const err = refusal(() => MaskSets.compile(masking, 'agate.yaml'));
  assert.is(err.code, 'CONFIG_INVALID');
  assert.is(err.message, 'agate.yaml: masking.audit: no mask set named "pii" in masking.sets');
});

const bad = suite('a bad mask rule in the config');

bad('an empty column glob is refused at start with the file, line and key', () => {
  const yaml = `${minimal}masking:\n  sets:\n    pii:\n      columns:\n        - email\n        - ''\n`;
  const err = refusal(() => MaskSets.compile(parseConfig(yaml, 'agate.yaml').masking, 'agate.yaml'));
  assert.is(err.code, 'CONFIG_INVALID');
  assert.match(err.message, "agate.yaml:7: masking.sets.pii.columns[1]: expected a column name or a glob such as *token*, not an empty string");
});

bad('an unknown detector is refused with the key and the detectors that exist', () => {
  const err = refusal(() => parseConfig(`${minimal}masking:\n  sets:\n    pii: { detectors: [ssn] }\n`, 'agate.yaml'));
  assert.is(err.code, 'CONFIG_INVALID');
  assert.match(err.message, 'agate.yaml:4: masking.sets.pii.detectors[0]:');
  assert.match(err.message, 'private_key');
});

compile.run();
bad.run();
