import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { errorCode } from '../../../test/harness/error-code.js';
import { ErrorCode } from '../../../core/src/errors.js';
import { formatCheckpoint, openCheckpoint, parseCheckpoint, signCheckpoint } from './checkpoint.js';
import { generateSignerKey, parseSignerKey, parseVerifierKey, verifierKey } from './note.js';

/* The C2SP tlog-checkpoint example body, and checkpoints Agate signs. */
const C2SP_EXAMPLE = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
const signer = parseSignerKey(generateSignerKey('agate.test/ledger'));
const verifiers = [parseVerifierKey(verifierKey(signer))];
const cp = { origin: 'agate.test/ledger/embedded', size: 42, root: Buffer.alloc(32, 7), chainHead: Buffer.alloc(32, 9) };

const checkpoint = suite('checkpoint');

checkpoint('parses the C2SP example and formats it back byte for byte', () => {
  const parsed = parseCheckpoint(C2SP_EXAMPLE);
  assert.is(parsed.origin, 'example.com/behind-the-sofa');
  assert.is(parsed.size, 20852163);
  assert.is(parsed.chainHead, undefined);
  assert.is(formatCheckpoint(parsed), C2SP_EXAMPLE);
});

checkpoint('a signed checkpoint opens to the same values, chain head included', () => {
  assert.equal(openCheckpoint(signCheckpoint(cp, signer), verifiers), cp);
});

checkpoint('a changed size, root or head byte breaks the signature', () => {
  const note = signCheckpoint(cp, signer);
  const root = cp.root.toString('base64');
  for (const forged of [note.replace('\n42\n', '\n43\n'), note.replace(root, Buffer.alloc(32, 8).toString('base64'))]) {
    assert.is(errorCode(() => openCheckpoint(forged, verifiers)), ErrorCode.LEDGER_SIGNATURE_INVALID);
  }
});

checkpoint('a checkpoint signed by another key is refused', () => {
  const other = parseSignerKey(generateSignerKey('agate.test/ledger'));
  assert.is(errorCode(() => openCheckpoint(signCheckpoint(cp, other), verifiers)), ErrorCode.LEDGER_SIGNATURE_INVALID);
});

checkpoint('malformed bodies are refused', () => {
  for (const body of ['origin\n042\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n', 'origin\n1\nAAAA\n', 'origin\n1\n', 'o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=']) {
    assert.is(errorCode(() => parseCheckpoint(body)), ErrorCode.LEDGER_CHECKPOINT_MALFORMED, JSON.stringify(body));
  }
});

checkpoint.run();
