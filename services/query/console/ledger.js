// Ledger: the latest signed checkpoint, a verification run with its result, and an inclusion
// proof of any event, downloaded as the file `agate verify-proof` checks offline.
import { get } from './api.js';
import { h, mount } from './dom.js';
import { download, table } from './table.js';

/** @param {HTMLElement} view @param {URLSearchParams} params */
export async function showLedger(view, params) {
  const checkpoint = h('div', { id: 'checkpoint' }, h('p', { class: 'muted' }, 'Loading…'));
  const verifyOut = h('div', { id: 'verify-result' });
  const verifyButton = h('button', { type: 'button', id: 'run-verify' }, 'Verify the ledger now');
  const eventId = h('input', { name: 'event_id', size: '40', placeholder: 'event id (a command, verdict, response …)', value: params.get('event') ?? '', required: true });
  const proofOut = h('div', { id: 'proof-result' });
  const proofForm = h('form', { class: 'filters', id: 'proof-form' }, h('label', { class: 'wide' }, 'Event', eventId), h('button', { type: 'submit' }, 'Download inclusion proof'));
  mount(view, h('h1', {}, 'Ledger'),
    h('h2', {}, 'Latest signed checkpoint'), checkpoint,
    h('h2', {}, 'Verification'), h('p', { class: 'muted' }, 'Recomputes every chain link and Merkle root and checks them against the signed checkpoints.'), verifyButton, verifyOut,
    h('h2', {}, 'Inclusion proof'), h('p', { class: 'muted' }, 'Proves one event is in the signed tree; check it offline with agate verify-proof.'), proofForm, proofOut);

  verifyButton.addEventListener('click', async () => {
    verifyButton.disabled = true;
    mount(verifyOut, h('p', { class: 'muted' }, 'Verifying…'));
    const started = performance.now();
    try {
      const r = await get('/v1/ledger/verify');
      const ms = Math.round(performance.now() - started);
      mount(verifyOut,
        h('p', { class: r.ok ? 'ok' : 'error', id: 'verify-verdict', 'data-ok': String(r.ok) }, r.ok ? `OK — the ledger verifies (${ms} ms)` : 'FAILED — the ledger does not verify'),
        table(['Chain', 'Result', 'Records checked', 'From', 'Head', 'Signed checkpoints', 'Problem'], r.chains.map((c) => [
          c.chain_id, c.ok ? 'ok' : 'FAILED', c.records, c.from, c.head?.seq ?? '', (c.checkpoints ?? []).join(', '),
          c.failure ? `${c.failure.kind} at record ${c.failure.seq}: ${c.failure.problem}` : (c.warnings ?? []).join('; '),
        ]), 'verify-chains'));
    } catch (err) {
      mount(verifyOut, h('p', { class: 'error' }, err.message));
    } finally {
      verifyButton.disabled = false;
    }
  });

  proofForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const id = eventId.value.trim();
    try {
      const proof = await get(`/v1/ledger/proof/${encodeURIComponent(id)}`);
      download(`agate-proof-${id}.json`, 'application/json', JSON.stringify(proof, null, 2) + '\n');
      mount(proofOut, h('p', { class: 'ok', id: 'proof-summary' }, `Record ${proof.leaf_index + 1} of ${proof.origin}/${proof.chain_id}, in the signed tree of ${proof.tree_size}: proof downloaded (${proof.hashes.length} hashes).`));
    } catch (err) {
      mount(proofOut, h('p', { class: 'error' }, err.message));
    }
  });

  try {
    const cp = await get('/v1/ledger/checkpoint');
    mount(checkpoint,
      h('dl', { class: 'facts' }, h('dt', {}, 'Chain'), h('dd', {}, cp.chain_id), h('dt', {}, 'Records'), h('dd', { id: 'checkpoint-size' }, String(cp.size)), h('dt', {}, 'Origin'), h('dd', {}, cp.origin)),
      h('pre', { class: 'command', id: 'checkpoint-note' }, cp.note),
      h('button', { type: 'button', onclick: () => download(`${cp.size}.checkpoint`, 'text/plain', cp.note) }, 'Download checkpoint'));
  } catch (err) {
    mount(checkpoint, h('p', { class: err.status === 404 ? 'muted' : 'error' }, err.status === 404 ? 'No checkpoint has been signed yet.' : err.message));
  }
}
