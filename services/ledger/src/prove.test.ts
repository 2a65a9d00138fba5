import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { errorCode } from '../../../test/harness/error-code.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Bus } from '../../../core/src/bus/bus.js';
import { ErrorCode } from '../../../core/src/errors.js';
import { silentLogger } from '../../../core/src/log.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { signCheckpoint, parseCheckpoint } from './checkpoint.js';
import { directorySink } from './checkpoint-sink.js';
import { LedgerService } from './ledger.js';
import { generateSignerKey, parseSignerKey, verifierKey } from './note.js';
import { verifyConsistencyProofFile, verifyInclusionProofFile, type ConsistencyProofFile, type InclusionProofFile } from './proof-file.js';
import { ledgerRoutes } from './api.js';
import { proveConsistency, proveInclusion } from './prove.js';
import { naiveMth } from './reference-mth.js';
import { rangeRoot } from './tree-sql.js';

/*
 * Proofs made from the real embedded store, checked by the offline verifier with only the
 * proof, a checkpoint file and the public key; any single changed byte must be refused.
 */
const codec = new EventCodec();
const dir = mkdtempSync(join(tmpdir(), 'agate-prove-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const signer = parseSignerKey(generateSignerKey('agate.test/ledger'));
const KEY = verifierKey(signer);
const bus = { publish: async () => {}, subscribe: async () => ({ close: async () => {} }) } as unknown as Bus;
const cpDir = join(dir, 'cp');
const events: AgateEvent[] = Array.from({ length: 50 }, (_, i) => ({ ...Object.values(SAMPLES)[i % 6]!, event_id: randomUUID() }) as AgateEvent);
const note = (size: number) => readFileSync(join(cpDir, 'test', `${size}.checkpoint`), 'utf8');

const flipBase64 = (b64: string, at = 0) => {
  const b = Buffer.from(b64, 'base64');
  b[at % b.length]! ^= 0x01;
  return b.toString('base64');
};

const proofs = suite('proofs from the store');
proofs.before(async () => {
  const ledger = new LedgerService({ bus, store, codec, chainId: 'test', logger: silentLogger, signer, checkpoints: { everyEvents: 20, everyMs: 60_000, sinks: [directorySink(cpDir)] } });
  await ledger.start();
  for (let i = 0; i < events.length; i += 10) await ledger.append(events.slice(i, i + 10));
  await ledger.checkpoint();
});
proofs.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

proofs('the engine computes the same subtree roots as the reference MTH', async () => {
  const leaves = events.map((e) => codec.encode(e));
  for (const [lo, hi] of [[0, 1], [0, 50], [3, 4], [16, 32], [5, 37], [32, 50]] as const) {
    assert.is((await rangeRoot(store, 'test', lo, hi)).toString('hex'), naiveMth(leaves.slice(lo, hi)).toString('hex'), `${lo}..${hi}`);
  }
});

proofs('an inclusion proof verifies offline, and any changed byte is refused', async () => {
  const proof = await proveInclusion(store, events[16]!.event_id, note(50));
  assert.is(proof.leaf_index, 16);
  const cp = note(50);
  const { leaf } = verifyInclusionProofFile(proof, cp, KEY);
  assert.is(codec.decode(leaf).event_id, events[16]!.event_id);
  const tampered: [string, InclusionProofFile, string][] = proof.hashes.map((_, i) => [`hash ${i}`, { ...proof, hashes: proof.hashes.map((h, j) => (j === i ? flipBase64(h, 5) : h)) }, cp]);
  tampered.push(['leaf', { ...proof, leaf: flipBase64(proof.leaf, 40) }, cp]);
  tampered.push(['index', { ...proof, leaf_index: 17 }, cp]);
  const root = parseCheckpoint(cp.slice(0, cp.indexOf('\n\n') + 1)).root.toString('base64');
  tampered.push(['checkpoint root', proof, cp.replace(root, flipBase64(root, 9))]);
  tampered.push(['checkpoint signature', proof, cp.replace(/ (\S{10})(\S+)\n$/, (_m, a: string, b: string) => ` ${a}${flipBase64(b.slice(0, 8))}${b.slice(8)}\n`)]);
  for (const [what, p, c] of tampered) {
    const got = errorCode(() => verifyInclusionProofFile(p, c, KEY));
    assert.ok([ErrorCode.LEDGER_PROOF_INVALID, ErrorCode.LEDGER_SIGNATURE_INVALID, ErrorCode.LEDGER_NOTE_MALFORMED].includes(got as never), `${what}: ${got}`);
  }
});

proofs('a checkpoint signed by another key is refused', async () => {
  const proof = await proveInclusion(store, events[3]!.event_id, note(50));
  const cp = parseCheckpoint(note(50).slice(0, note(50).indexOf('\n\n') + 1));
  const forged = signCheckpoint(cp, parseSignerKey(generateSignerKey('agate.test/ledger')));
  assert.is(errorCode(() => verifyInclusionProofFile(proof, forged, KEY)), ErrorCode.LEDGER_SIGNATURE_INVALID);
});

proofs('without a checkpoint the latest stored one is used', async () => {
  const proof = await proveInclusion(store, events[49]!.event_id);
  assert.is(proof.tree_size, 50);
  assert.not.throws(() => verifyInclusionProofFile(proof, proof.checkpoint, KEY));
});

proofs('a consistency proof between two checkpoints verifies offline, and any changed byte is refused', async () => {
  const proof = await proveConsistency(store, note(20), note(50));
  assert.not.throws(() => verifyConsistencyProofFile(proof, KEY));
  const bad: [string, ConsistencyProofFile][] = proof.hashes.map((_, i) => [`hash ${i}`, { ...proof, hashes: proof.hashes.map((h, j) => (j === i ? flipBase64(h, 2) : h)) }]);
  bad.push(['old size', { ...proof, old_size: 21 }]);
  const root = parseCheckpoint(note(20).slice(0, note(20).indexOf('\n\n') + 1)).root.toString('base64');
  bad.push(['old checkpoint', { ...proof, old_checkpoint: proof.old_checkpoint.replace(root, flipBase64(root)) }]);
  for (const [what, p] of bad) assert.is.not(errorCode(() => verifyConsistencyProofFile(p, KEY)), 'no error', what);
  assert.is(errorCode(() => verifyConsistencyProofFile(proof, verifierKey(parseSignerKey(generateSignerKey('agate.test/ledger'))))), ErrorCode.LEDGER_SIGNATURE_INVALID);
});

proofs('the query API routes serve checkpoints and proofs an auditor can verify', async () => {
  const routes = Object.fromEntries(ledgerRoutes(store).map((r) => [r.path, r.handler]));
  const none = new URLSearchParams();
  const latest = (await routes['/v1/ledger/checkpoint']!({}, none)) as { size: number; note: string };
  assert.is(latest.size, 50);
  const proof = (await routes['/v1/ledger/proof/:event_id']!({ event_id: events[7]!.event_id }, new URLSearchParams('size=20'))) as InclusionProofFile;
  assert.is(proof.tree_size, 20);
  assert.not.throws(() => verifyInclusionProofFile(proof, note(20), KEY));
  const consistency = (await routes['/v1/ledger/consistency']!({}, new URLSearchParams('old=20&new=50'))) as ConsistencyProofFile;
  assert.not.throws(() => verifyConsistencyProofFile(consistency, KEY));
  const missing = await routes['/v1/ledger/proof/:event_id']!({ event_id: 'no-such-event' }, none).catch((err: { code: string }) => err.code);
  assert.is(missing, ErrorCode.API_NOT_FOUND);
});

proofs.run();
