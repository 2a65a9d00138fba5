import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { AgateError, ErrorCode } from '../../../core/src/errors.js';

/*
 * C2SP signed-note (c2sp.org/signed-note) with Ed25519 keys:
 *   note      = text "\n" signature-line+      (text is non-empty and ends in "\n")
 *   signature = "— " name " " base64(key ID (4 bytes) || Ed25519 signature over text)
 *   key ID    = SHA-256(name || "\n" || 0x01 || public key)[0:4]
 *   verifier  = name "+" hex(key ID) "+" base64(0x01 || public key)
 * A signer key is written as "PRIVATE+KEY+" name "+" hex(key ID) "+" base64(0x01 || seed).
 */

const ED25519 = 0x01;
const SIG_PREFIX = '\u2014 ';
// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410), so node:crypto can load note-format keys.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface NoteSigner {
  name: string;
  keyId: Buffer;
  publicKey: Buffer;
  sign(message: Buffer): Buffer;
}

export interface NoteVerifier {
  name: string;
  keyId: Buffer;
  verify(message: Buffer, signature: Buffer): boolean;
}

const noteError = (message: string) => new AgateError(ErrorCode.LEDGER_NOTE_MALFORMED, message);

/** Key names are non-empty and contain no whitespace and no '+'. */
function checkKeyName(name: string): string {
  if (name.length === 0 || /[\s+]/u.test(name)) throw new AgateError(ErrorCode.LEDGER_KEY_INVALID, `"${name}" is not a valid key name (no spaces, no '+')`);
  return name;
}

function keyId(name: string, publicKey: Buffer): Buffer {
  return createHash('sha256').update(name).update('\n').update(Buffer.of(ED25519)).update(publicKey).digest().subarray(0, 4);
}

function signerFromSeed(name: string, seed: Buffer): NoteSigner {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  return { name, keyId: keyId(name, publicKey), publicKey, sign: (message) => sign(null, message, privateKey) };
}

function rawPublicKey(key: KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url');
}

/** A fresh Ed25519 signer key in note format. */
export function generateSignerKey(name: string): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const signer = signerFromSeed(checkKeyName(name), seed);
  return `PRIVATE+KEY+${name}+${signer.keyId.toString('hex')}+${Buffer.concat([Buffer.of(ED25519), seed]).toString('base64')}`;
}

/** Splits on the first `count - 1` plus signs only: standard base64 may itself contain '+'. */
function splitKey(text: string, count: number): string[] {
  const parts = text.trim().split('+');
  return parts.length < count ? parts : [...parts.slice(0, count - 1), parts.slice(count - 1).join('+')];
}

export function parseSignerKey(text: string): NoteSigner {
  const parts = splitKey(text, 5);
  const bad = () => new AgateError(ErrorCode.LEDGER_KEY_INVALID, 'not an Ed25519 signer key (PRIVATE+KEY+name+id+key)');
  if (parts.length !== 5 || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY') throw bad();
  const raw = Buffer.from(parts[4]!, 'base64');
  if (raw.length !== 33 || raw[0] !== ED25519) throw bad();
  const signer = signerFromSeed(checkKeyName(parts[2]!), raw.subarray(1));
  if (signer.keyId.toString('hex') !== parts[3]) throw bad();
  return signer;
}

/** The public verifier key an auditor keeps: name+id+key. */
export function verifierKey(signer: Pick<NoteSigner, 'name' | 'keyId' | 'publicKey'>): string {
  return `${signer.name}+${signer.keyId.toString('hex')}+${Buffer.concat([Buffer.of(ED25519), signer.publicKey]).toString('base64')}`;
}

export function parseVerifierKey(text: string): NoteVerifier {
  const parts = splitKey(text, 3);
  const bad = () => new AgateError(ErrorCode.LEDGER_KEY_INVALID, 'not an Ed25519 verifier key (name+id+key)');
  if (parts.length !== 3) throw bad();
  const [name, id, b64] = parts as [string, string, string];
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 33 || raw[0] !== ED25519) throw bad();
  const publicKey = raw.subarray(1);
  const kid = keyId(checkKeyName(name), publicKey);
  if (kid.toString('hex') !== id.toLowerCase()) throw bad();
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.toString('base64url') }, format: 'jwk' });
  return { name, keyId: kid, verify: (message, signature) => signature.length === 64 && verify(null, message, key, signature) };
}

/** Signs `text` (which must end in a newline) and returns the note. */
export function signNote(text: string, signer: NoteSigner): string {
  checkText(text);
  const sig = Buffer.concat([signer.keyId, signer.sign(Buffer.from(text))]);
  return `${text}\n${SIG_PREFIX}${signer.name} ${sig.toString('base64')}\n`;
}

/**
 * Opens a note: returns its text once a signature by one of `verifiers` checks. Signatures by
 * other keys are ignored; a signature that claims a known key but does not verify is refused.
 */
export function openNote(note: string, verifiers: readonly NoteVerifier[]): { text: string; signedBy: string } {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw noteError('not a signed note: no blank line before the signatures');
  const text = note.slice(0, split + 1);
  checkText(text);
  const message = Buffer.from(text);
  let signedBy: string | undefined;
  for (const line of note.slice(split + 2, -1).split('\n')) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/u.exec(line);
    if (m === null) throw noteError('malformed signature line');
    const sig = Buffer.from(m[2]!, 'base64');
    if (sig.length < 5) throw noteError('malformed signature line');
    const v = verifiers.find((k) => k.name === m[1] && k.keyId.equals(sig.subarray(0, 4)));
    if (v === undefined) continue;
    if (!v.verify(message, sig.subarray(4))) throw new AgateError(ErrorCode.LEDGER_SIGNATURE_INVALID, `the signature by ${v.name} does not verify`);
    signedBy ??= v.name;
  }
  if (signedBy === undefined) throw new AgateError(ErrorCode.LEDGER_SIGNATURE_INVALID, 'the note carries no signature by a trusted key');
  return { text, signedBy };
}

function checkText(text: string): void {
  if (text.length === 0 || !text.endsWith('\n')) throw noteError('note text must be non-empty and end with a newline');
  // Control characters other than newline are forbidden, which keeps the blank-line split unambiguous.
  if (/[\u0000-\u0009\u000b-\u001f\u007f]/u.test(text) || text.includes('\n\n')) throw noteError('note text has control characters or blank lines');
}
