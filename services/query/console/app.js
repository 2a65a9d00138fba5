// The console's entry point: who is signed in, then a view per location hash
// (#/approvals, #/sessions, #/sessions/<id>, #/sql, #/ledger, #/policy).
import { me, post } from './api.js';
import { showApprovals } from './approvals.js';
import { h, mount } from './dom.js';
import { showLedger } from './ledger.js';
import { showPolicy } from './policy.js';
import { showSession, showSessions } from './sessions.js';
import { showSql } from './sql.js';

/** Which roles may open each page (the API checks again: roles.ts). */
const PAGE_ROLES = {
  approvals: ['approver', 'analyst', 'auditor', 'admin'],
  sessions: ['analyst', 'auditor', 'admin'],
  sql: ['analyst', 'admin'],
  ledger: ['analyst', 'auditor', 'admin'],
  policy: ['analyst', 'auditor', 'admin'],
};

const view = document.getElementById('view');
let stopView = () => {};

async function main() {
  const user = await me().catch((err) => {
    mount(view, h('p', { class: 'error' }, `The console cannot reach Agate: ${err.message}`));
    return undefined;
  });
  if (user === undefined) return;
  if (user === null) return void signIn();
  mount(document.getElementById('who'),
    h('span', { class: 'name', id: 'user-name' }, user.name), ' ', h('span', { class: 'muted roles' }, user.roles.join(', ')), ' ',
    h('button', { type: 'button', class: 'link', id: 'sign-out', onclick: signOut }, 'Sign out'));
  for (const a of document.querySelectorAll('#nav a')) a.hidden = !PAGE_ROLES[a.dataset.view].some((r) => user.roles.includes(r));
  document.getElementById('nav').hidden = false;
  const route = () => {
    stopView();
    stopView = () => {};
    const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
    const params = new URLSearchParams(query);
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', path.startsWith(`/${a.dataset.view}`));
    const m = /^\/sessions\/(.+)$/.exec(path);
    if (m) return void showSession(view, decodeURIComponent(m[1]), user);
    if (path === '/sessions') return void showSessions(view, params);
    if (path === '/sql') return void showSql(view, user);
    if (path === '/ledger') return void showLedger(view, params);
    if (path === '/policy') return void showPolicy(view);
    if (path !== '/approvals') {
      history.replaceState(null, '', '#/approvals');
      return route();
    }
    stopView = showApprovals(view, user);
  };
  window.addEventListener('hashchange', route);
  route();
}

async function signIn() {
  // Which identity providers are configured (console.oidc, console.saml); one button each.
  const providers = await fetch('/ui/providers', { credentials: 'same-origin' }).then((r) => r.json()).catch(() => ({ oidc: true, saml: false }));
  mount(view, h('section', { class: 'signin' },
    h('h1', {}, 'Agate console'),
    h('p', {}, 'Approve held commands, follow sessions and read the audit trail.'),
    providers.oidc ? h('a', { class: 'button', href: '/ui/login', id: 'sign-in' }, 'Sign in with your identity provider') : false,
    providers.oidc && providers.saml ? ' ' : false,
    providers.saml ? h('a', { class: 'button', href: '/ui/login/saml', id: 'sign-in-saml' }, 'Sign in with SAML') : false));
}

/** Ends the console session; after a SAML sign-in with single logout, goes on to the IdP to end its session too. */
async function signOut() {
  const answer = await post('/ui/logout').catch(() => undefined);
  location.replace(answer?.redirect ?? '/ui/');
}

void main();
