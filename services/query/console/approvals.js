// The approvals inbox: held commands arrive by server-sent events the moment the ledger has
// them; each card says who ran what where, how many approvals it has of how many, and how long
// is left; approving or denying needs a written justification.
import { post } from './api.js';
import { ago, h, mount, parseTime, textNodes, timeLeft } from './dom.js';
import { highlight, revealNote } from './highlight.js';

/**
 * @param {HTMLElement} view
 * @param {{ issuer: string, subject: string, roles: string[] }} user
 * @returns {() => void} stops the stream and timers
 */
export function showApprovals(view, user) {
  const cards = new Map();
  let offset = 0; // server clock minus ours, so "time left" follows the server's expiry
  const live = h('span', { class: 'live', id: 'live-state' }, 'connecting…');
  const pending = h('div', { class: 'cards', id: 'pending' });
  const settled = h('div', { class: 'cards', id: 'settled' });
  const empty = h('p', { class: 'muted', id: 'no-pending' }, 'Nothing is waiting for approval.');
  mount(view,
    h('div', { class: 'title-row' }, h('h1', {}, 'Approvals'), live),
    h('h2', {}, 'Waiting'), empty, pending,
    h('h2', {}, 'Recently settled'), settled);

  const source = new EventSource('/ui/api/approvals/stream');
  source.addEventListener('open', () => { live.textContent = 'live'; live.className = 'live on'; });
  source.addEventListener('error', () => { live.textContent = 'reconnecting…'; live.className = 'live off'; });
  source.addEventListener('inbox', (e) => {
    const { server_time: serverTime, items } = JSON.parse(e.data);
    offset = serverTime - Date.now();
    const seen = new Set();
    for (const item of items) {
      seen.add(item.approval_id);
      let card = cards.get(item.approval_id);
      if (card === undefined) {
        card = makeCard(item, user);
        cards.set(item.approval_id, card);
      }
      card.update(item);
      const list = item.status === 'pending' ? pending : settled;
      if (card.el.parentElement !== list) list.prepend(card.el);
    }
    for (const [id, card] of cards) if (!seen.has(id)) { card.el.remove(); cards.delete(id); }
    empty.hidden = pending.children.length > 0;
    tick();
  });
  const tick = () => { for (const card of cards.values()) card.tick(Date.now() + offset); };
  const timer = setInterval(tick, 1000);
  return () => { source.close(); clearInterval(timer); };
}

function makeCard(item, user) {
  const self = item.requester_issuer === user.issuer && item.requester_subject === user.subject;
  const canAnswer = user.roles.includes('approver') && !self;
  const status = h('span', { class: 'badge status' });
  const count = h('span', { class: 'count' });
  const held = h('span', { class: 'muted held' });
  const left = h('span', { class: 'left' });
  const outcome = h('p', { class: 'outcome', hidden: true });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const justification = h('textarea', { name: 'justification', rows: '2', required: true, maxlength: '2000', placeholder: 'Justification (required): why is this safe, or why not?' });
  const approve = h('button', { type: 'submit', name: 'approve', class: 'approve' }, 'Approve');
  const deny = h('button', { type: 'submit', name: 'deny', class: 'deny' }, 'Deny');
  const form = h('form', { class: 'answer', novalidate: true }, justification, h('div', { class: 'buttons' }, approve, deny), error);
  let sending = false;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const decision = e.submitter?.name === 'deny' ? 'deny' : 'approve';
    const comment = justification.value.trim();
    error.hidden = true;
    if (comment === '') {
      error.textContent = 'Write a justification first.';
      error.hidden = false;
      justification.focus();
      return;
    }
    approve.disabled = deny.disabled = true;
    sending = true;
    try {
      await post(`/v1/approvals/${encodeURIComponent(item.approval_id)}/${decision}`, { comment });
      outcome.textContent = decision === 'approve' ? 'Your approval is recorded.' : 'Your denial is recorded.';
      outcome.hidden = false;
      form.hidden = true;
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      approve.disabled = current.parameters == null;
      deny.disabled = false;
    } finally {
      sending = false;
    }
  });
  const claims = h('dl', { class: 'claims' });
  // Values bound to $1, $2 … (which rows a `DELETE … WHERE id = ANY($1)` deletes), or a Kubernetes
  // request's body: no hold can be approved until they are shown (they come with the store's read).
  const placeholders = /\$\d/.test(item.text);
  const parameters = h('dl', { class: 'parameters', hidden: true });
  const waiting = h('p', { class: 'note' }, 'Loading the values it was sent with…');
  const message = h('p', { class: 'message', hidden: true });
  const finalReason = h('p', { class: 'final', hidden: true });
  const el = h('article', { class: 'card', 'data-approval-id': item.approval_id },
    h('header', {}, h('span', { class: 'badge rule' }, item.rule_id), status, count, held, left),
    h('section', { class: 'who' }, h('h3', {}, 'Who'),
      h('p', {}, h('strong', { class: 'subject' }, item.requester_subject), h('span', { class: 'muted' }, ` · ${item.requester_issuer}`)), claims),
    h('section', { class: 'what' }, h('h3', {}, 'What'), revealNote(item.text), h('pre', { class: 'command' }, highlight(item.text)), parameters, waiting, message),
    h('section', { class: 'where' }, h('h3', {}, 'Where'),
      h('p', {}, h('span', { class: 'target' }, item.target), ' · ', h('a', { href: `#/sessions/${encodeURIComponent(item.session_id)}` }, 'session'))),
    finalReason,
    self ? h('p', { class: 'note' }, 'You ran this command: someone else must approve it.') : null,
    !user.roles.includes('approver') ? h('p', { class: 'note' }, 'You do not hold the approver role.') : null,
    outcome,
    canAnswer ? form : null);
  let current = item;
  let shownClaims = '';
  return {
    el,
    update(next) {
      current = next;
      // A hold seen on the bus may come before its claims and message; they fill in when known.
      const claimsJson = JSON.stringify(next.claims ?? {});
      if (claimsJson !== shownClaims) {
        shownClaims = claimsJson;
        claims.replaceChildren(...Object.entries(next.claims ?? {}).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
      }
      if (next.parameters != null && parameters.hidden && next.parameters.length > 0) {
        const name = (i) => (placeholders ? `$${i + 1}` : next.parameters.length === 1 ? 'body' : `#${i + 1}`);
        parameters.replaceChildren(...next.parameters.flatMap((v, i) => [h('dt', {}, name(i)), h('dd', {}, v === null ? h('span', { class: 'muted' }, 'NULL') : h('pre', { class: 'inline' }, v))]));
        parameters.hidden = false;
      }
      waiting.hidden = next.parameters != null;
      if (!sending) approve.disabled = next.parameters == null;
      message.textContent = next.message ?? '';
      message.hidden = !next.message;
      status.textContent = next.status;
      el.dataset.status = next.status;
      count.textContent = `${next.approvals} of ${next.required} approval${next.required === 1 ? '' : 's'}`;
      if (next.status !== 'pending') {
        form.hidden = true;
        left.textContent = '';
        if (next.final_reason) { finalReason.replaceChildren(...textNodes(next.final_reason)); finalReason.hidden = false; }
      }
    },
    tick(now) {
      held.textContent = `held ${ago(now - parseTime(current.requested_at).getTime())}`;
      if (current.status === 'pending') left.textContent = timeLeft(Date.parse(current.expires_at) - now);
    },
  };
}
