import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { errorCode } from '../../../test/harness/error-code.js';
import { ErrorCode } from '../../../core/src/errors.js';
import { generateSignerKey, openNote, parseSignerKey, parseVerifierKey, signNote, verifierKey } from './note.js';

/* Vector: the example keys and note published with Go's golang.org/x/mod/sumdb/note. */
const GO_SIGNER = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const GO_VERIFIER = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE = `${GO_TEXT}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;

const note = suite('signed note');

note('signs the Go reference note byte for byte and derives its verifier key', () => {
  const signer = parseSignerKey(GO_SIGNER);
  assert.is(signNote(GO_TEXT, signer), GO_NOTE);
  assert.is(verifierKey(signer), GO_VERIFIER);
});

note('opens the Go reference note with the published verifier key', () => {
  assert.equal(openNote(GO_NOTE, [parseVerifierKey(GO_VERIFIER)]), { text: GO_TEXT, signedBy: 'PeterNeumann' });
});

note('refuses a note whose text, or signature, changed by one byte', () => {
  const v = [parseVerifierKey(GO_VERIFIER)];
  assert.is(errorCode(() => openNote(GO_NOTE.replace('problem,', 'problem;'), v)), ErrorCode.LEDGER_SIGNATURE_INVALID);
  assert.is(errorCode(() => openNote(GO_NOTE.replace('x08go', 'x08gp'), v)), ErrorCode.LEDGER_SIGNATURE_INVALID);
});

note('refuses a note signed by another key under the same name', () => {
  const other = parseSignerKey(generateSignerKey('PeterNeumann'));
  assert.is(errorCode(() => openNote(signNote(GO_TEXT, other), [parseVerifierKey(GO_VERIFIER)])), ErrorCode.LEDGER_SIGNATURE_INVALID);
});

note('a generated key round-trips and signs what its verifier accepts', () => {
  const signer = parseSignerKey(generateSignerKey('agate.test/ledger'));
  assert.is(openNote(signNote('a\nb\n', signer), [parseVerifierKey(verifierKey(signer))]).text, 'a\nb\n');
});

note('malformed keys and notes have stable codes', () => {
  assert.is(errorCode(() => parseVerifierKey('PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW')), ErrorCode.LEDGER_KEY_INVALID);
  assert.is(errorCode(() => parseSignerKey('PRIVATE+KEY+bad name+00+AA==')), ErrorCode.LEDGER_KEY_INVALID);
  assert.is(errorCode(() => openNote('no signatures\n', [])), ErrorCode.LEDGER_NOTE_MALFORMED);
  assert.is(errorCode(() => signNote('no newline', parseSignerKey(GO_SIGNER))), ErrorCode.LEDGER_NOTE_MALFORMED);
});

note.run();
