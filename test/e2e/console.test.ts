// The web console end to end in a real browser: headless Chromium (Debian's, driven by
// playwright-core) signs in through a real Keycloak by OIDC (code + PKCE); a psql statement a
// hold rule matches shows in the live inbox; the approver approves it with a justification and
// psql completes; a second one is denied and psql gets the refusal; the session's timeline shows
// it all. Screenshots of each page go to test/screenshots/ (git-ignored; see README "Console").
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import pg from 'pg';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { startKeycloak, type Keycloak } from '../harness/keycloak.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { run } from '../harness/proc.js';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { until, untilTrue } from '../harness/until.js';
import { makeTestCa } from '../harness/test-ca.js';
import { agateConfig, agentPsql, REPO_ROOT, startAgateProcess, withSshAndConsole, type AgatePlaces, type AgateProcess, type AgentPsql } from './agate-process.js';
import { keycloakLogin, launchChromium, type Chromium } from './chromium.js';

const SHOTS = join(REPO_ROOT, 'test', 'screenshots');
const ALICE = { username: 'alice', password: `pw-${randomBytes(6).toString('hex')}`, groups: ['approver', 'dba', 'analyst', 'admin'] };
const BOB = { username: 'bob', password: `pw-${randomBytes(6).toString('hex')}`, groups: ['approver', 'dba'] };

const POLICY = `policy:
  default: allow
  rules:
    - id: drop-needs-dba
      action: hold
      message: Dropping a table needs a DBA's approval
      match: { sql: { statements: [DropStmt] } }
      approval: { approvers: { claims: { groups: dba } }, required: 1, timeout_s: 120 }
    - id: alter-needs-two
      action: hold
      match: { sql: { statements: [AlterTableStmt] } }
      approval: { approvers: { claims: { groups: dba } }, required: 2, timeout_s: 120 }
    - id: truncate-needs-dba
      action: hold
      match: { sql: { statements: [TruncateStmt] } }
      approval: { approvers: { claims: { groups: dba } }, required: 1, timeout_s: 120 }
`;

interface Ctx {
  pg: PostgresServer; oidc: OidcIssuer; keycloak: Keycloak; agate: AgateProcess; sshd: SshServer;
  chrome: Chromium; browser: BrowserContext; page: Page; clientSecret: string; second?: Chromium;
  samlDir: string; samlCertFile: string; spSigning: { cert: string; key: string };
}
/** The SAML IdP is reached as localhost and Agate as 127.0.0.1: two sites, so the ACS POST is truly cross-site. */
const samlIdp = (keycloak: Keycloak) => `${keycloak.baseUrl.replace('127.0.0.1', 'localhost')}/realms/agate`;
const SAML_SP = 'agate-console-saml';
const ui = suite<Ctx>('console: sign-in and approvals in a real browser');

ui.before(async (ctx) => {
  mkdirSync(SHOTS, { recursive: true });
  [ctx.pg, ctx.oidc, ctx.keycloak, ctx.sshd] = await Promise.all([startPostgres(), startOidcIssuer(), startKeycloak(), startSshd()]);
  ctx.clientSecret = randomBytes(18).toString('base64url');
  // The realm (and its signing key) is made once Agate's port is known; Agate reads the IdP certificate at each sign-in.
  ctx.samlDir = mkdtempSync(join(tmpdir(), 'agate-saml-idp-'));
  ctx.samlCertFile = join(ctx.samlDir, 'idp.pem');
  // The console's own SAML signing key (LogoutRequests, LogoutResponses, AuthnRequests), registered at Keycloak below.
  ctx.spSigning = await (await makeTestCa(ctx.samlDir)).client('agate-saml-sp');
  ctx.agate = await startAgateProcess({
    // An SSH target too, for the shell replay.
    configYaml: withSshAndConsole(agateConfig({ pg: ctx.pg, issuer: ctx.oidc, policy: POLICY }), {
      sshd: ctx.sshd, oidcIssuer: `${ctx.keycloak.baseUrl}/realms/agate`, clientSecret: ctx.clientSecret,
      roles: '{ claim: groups, approver: [approver], analyst: [analyst], auditor: [auditor], admin: [admin] }',
      more: (p) => `  saml:
    idp_entity_id: ${JSON.stringify(samlIdp(ctx.keycloak))}
    idp_sso_url: ${JSON.stringify(`${samlIdp(ctx.keycloak)}/protocol/saml`)}
    idp_cert_file: ${JSON.stringify(ctx.samlCertFile)}
    sp_entity_id: ${SAML_SP}
    acs_url: "http://127.0.0.1:${p.apiPort}/ui/saml/acs"
    slo_url: "http://127.0.0.1:${p.apiPort}/ui/saml/slo"
    idp_slo_url: ${JSON.stringify(`${samlIdp(ctx.keycloak)}/protocol/saml`)}
    sp_signing: { key: { file: ${JSON.stringify(ctx.spSigning.key)} }, cert_file: ${JSON.stringify(ctx.spSigning.cert)} }
`,
    }),
  });
  const realm = await ctx.keycloak.createRealm({
    name: 'agate', redirectUri: `${ctx.agate.apiUrl}/ui/callback`, users: [ALICE, BOB], clientSecret: ctx.clientSecret,
    saml: { entityId: SAML_SP, acsUrl: `${ctx.agate.apiUrl}/ui/saml/acs`, logout: { sloUrl: `${ctx.agate.apiUrl}/ui/saml/slo`, signingCertPem: readFileSync(ctx.spSigning.cert, 'utf8') } },
  });
  // The IdP's signing certificate, from its own metadata, as an operator would take it.
  const metadata = await (await fetch(realm.samlMetadataUrl!)).text();
  const cert = /<(?:\w+:)?X509Certificate>([^<]+)</.exec(metadata)?.[1];
  if (cert === undefined) throw new Error(`no X509Certificate in the Keycloak SAML metadata:\n${metadata}`);
  writeFileSync(ctx.samlCertFile, `-----BEGIN CERTIFICATE-----\n${cert.replace(/\s+/g, '').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`);
  ctx.chrome = await launchChromium();
  ({ browser: ctx.browser, page: ctx.page } = ctx.chrome);
});

ui.after(async (ctx) => {
  await ctx.second?.close();
  await ctx.chrome?.close();
  await ctx.agate?.dispose();
  await ctx.keycloak?.stop();
  if (ctx.samlDir) rmSync(ctx.samlDir, { recursive: true, force: true });
  await ctx.oidc?.close();
  await ctx.pg?.stop();
  await ctx.sshd?.stop();
});

/** Waits for what the browser or psql shows, polling often: the inbox test measures a second. */
const soon = <T>(what: string, probe: () => T | undefined): Promise<T> => until(what, probe, { timeoutMs: 20_000, everyMs: 20 });

/** The approval id psql was given, once it printed the hold NOTICE. */
async function heldApproval(psql: AgentPsql): Promise<string> {
  await soon('the hold NOTICE in psql', () => (psql.out.noticeAt > 0 ? true : undefined));
  return /approval ([0-9a-f-]{36})/.exec(psql.out.stderr)![1]!;
}

/** psql's held statement as a pending card in the live inbox, which must show it within a second of the NOTICE. */
async function pendingCard(page: Page, psql: AgentPsql): Promise<{ id: string; card: Locator }> {
  const id = await heldApproval(psql);
  const card = page.locator(`article.card[data-approval-id="${id}"][data-status="pending"]`);
  await card.waitFor({ timeout: 10_000 });
  const shownAfterMs = Date.now() - psql.out.noticeAt;
  console.log(`  hold shown in the inbox ${shownAfterMs} ms after psql printed the NOTICE`);
  assert.ok(shownAfterMs <= 1000, `the hold appeared within a second (${shownAfterMs} ms)`);
  return { id, card };
}

async function asAgent(ctx: Ctx, sql: string): Promise<void> {
  const c = new pg.Client({ host: '127.0.0.1', port: ctx.agate.pgPort, database: 'appdb', user: 'agent', password: await ctx.oidc.mint(ctx.oidc.githubActionsClaims()) });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** Signs `user` in through Keycloak's own form, starting at the console's sign-in page. */
async function signIn(page: Page, apiUrl: string, user: { username: string; password: string }): Promise<void> {
  await page.goto(`${apiUrl}/ui/`);
  await page.click('#sign-in');
  await keycloakLogin(page, user);
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

ui('a person signs in through Keycloak by OIDC; the session cookie is HttpOnly and SameSite=Strict', async ({ page, agate, browser }) => {
  await page.goto(`${agate.apiUrl}/ui/`);
  await page.waitForSelector('#sign-in');
  await shot(page, 'console-sign-in');
  await page.click('#sign-in');
  // Keycloak's own login form, on its own origin.
  await page.waitForSelector('#username');
  assert.match(page.url(), /\/realms\/agate\/protocol\/openid-connect\/auth\?/);
  assert.match(page.url(), /code_challenge_method=S256/);
  await keycloakLogin(page, ALICE);
  assert.is(await page.textContent('#user-name'), 'alice Tester'); // the ID token's name claim
  assert.match((await page.textContent('.roles')) ?? '', 'approver');
  assert.ok(page.url().startsWith(`${agate.apiUrl}/ui/`), page.url());
  const cookie = (await browser.cookies(`${agate.apiUrl}/ui/`)).find((c) => c.name === 'agate_console');
  assert.ok(cookie, 'a session cookie');
  assert.is(cookie!.httpOnly, true);
  assert.is(cookie!.sameSite, 'Strict');
  assert.is(cookie!.path, '/ui/');
  // The page's scripts cannot read it.
  assert.not.match(await page.evaluate(() => document.cookie), 'agate_console');
});

ui('a person signs in through Keycloak by SAML (a cross-site POST to the ACS) and sees the inbox; the SP metadata is served', async (ctx) => {
  const metadata = await fetch(`${ctx.agate.apiUrl}/ui/saml/metadata`);
  assert.is(metadata.status, 200);
  const xml = await metadata.text();
  assert.match(xml, `entityID="${SAML_SP}"`);
  assert.match(xml, `Location="${ctx.agate.apiUrl}/ui/saml/acs"`);
  // A browser of its own: nobody signed in yet.
  const chrome = await launchChromium();
  const { browser, page } = chrome;
  try {
    const cookiesOn: Record<string, string> = {};
    page.on('requestfinished', (req) => {
      const path = new URL(req.url()).pathname;
      if (path === '/ui/saml/acs' || path === '/ui/saml/finish') void req.allHeaders().then((h) => (cookiesOn[path] = h.cookie ?? ''));
    });
    await page.goto(`${ctx.agate.apiUrl}/ui/`);
    await page.click('#sign-in-saml');
    await page.waitForSelector('#username');
    assert.match(page.url(), /^http:\/\/localhost:\d+\/realms\/agate\/protocol\/saml/);
    await keycloakLogin(page, ALICE);
    await page.waitForSelector('#nav:not([hidden])');
    assert.ok(page.url().startsWith(`${ctx.agate.apiUrl}/ui/`), page.url());
    assert.match((await page.textContent('.roles')) ?? '', 'approver');
    assert.match((await page.textContent('.roles')) ?? '', 'admin');
    const me = await page.evaluate(async () => (await fetch('/ui/api/me')).json() as Promise<{ issuer: string; roles: string[] }>);
    assert.is(me.issuer, samlIdp(ctx.keycloak));
    // The inbox opens (the approver's page), fed by the live stream.
    await page.waitForSelector('#live-state.on');
    await page.waitForSelector('#no-pending');
    assert.match(page.url(), /#\/approvals$/);
    await shot(page, 'console-saml-inbox');
    // The IdP's form post is cross-site: our Lax flow cookie stays behind; the same-site hop after it carries it.
    await soon('the ACS and finish requests', () => (cookiesOn['/ui/saml/acs'] !== undefined && cookiesOn['/ui/saml/finish'] !== undefined ? true : undefined));
    assert.not.match(cookiesOn['/ui/saml/acs']!, 'agate_console_login');
    assert.match(cookiesOn['/ui/saml/finish']!, 'agate_console_login');
    const cookie = (await browser.cookies(`${ctx.agate.apiUrl}/ui/`)).find((c) => c.name === 'agate_console');
    assert.is(cookie?.sameSite, 'Strict');
    assert.is(cookie?.httpOnly, true);
  } finally {
    await chrome.close();
  }
});

ui('SAML single logout: signing out ends the session at Keycloak too; a Keycloak-side logout ends the console session', async (ctx) => {
  const chrome = await launchChromium();
  const { browser, page } = chrome;
  const consoleCookie = async () => (await browser.cookies(`${ctx.agate.apiUrl}/ui/`)).find((c) => c.name === 'agate_console')?.value;
  // The cookie replayed from outside the browser: does the server still know the session?
  const meStatus = async (cookie: string) => (await fetch(`${ctx.agate.apiUrl}/ui/api/me`, { headers: { cookie: `agate_console=${cookie}` } })).status;
  const samlSignIn = async (page: Page) => {
    await page.goto(`${ctx.agate.apiUrl}/ui/`);
    await page.click('#sign-in-saml');
    await keycloakLogin(page, BOB);
  };
  try {
    const idpRequests: string[] = [];
    page.on('request', (r) => { if (r.url().startsWith(samlIdp(ctx.keycloak))) idpRequests.push(r.url()); });
    await samlSignIn(page);
    const first = await consoleCookie();
    assert.ok(first, 'signed in');
    assert.is(await meStatus(first!), 200);
    assert.is(await ctx.keycloak.userSessions('agate', BOB.username), 1);

    // SP-initiated: the console's sign-out sends a signed LogoutRequest to Keycloak, which answers at /ui/saml/slo.
    const back = page.waitForResponse((r) => new URL(r.url()).pathname === '/ui/saml/slo');
    await page.click('#sign-out');
    const sloAnswer = await back;
    assert.is(sloAnswer.status(), 200, 'the LogoutResponse is accepted');
    assert.match(sloAnswer.url(), /[?&]SAMLResponse=/);
    assert.match(sloAnswer.url(), /[?&]Signature=/);
    await page.waitForSelector('#sign-in-saml');
    const logoutRequest = new URL(idpRequests.find((u) => new URL(u).searchParams.has('SAMLRequest') && /LogoutRequest/.test(inflate(new URL(u).searchParams.get('SAMLRequest')!)))!);
    assert.ok(logoutRequest.searchParams.get('Signature'), 'the LogoutRequest is signed');
    // It names the person as the assertion did (Keycloak's persistent NameID) and the IdP session (SessionIndex).
    assert.match(inflate(logoutRequest.searchParams.get('SAMLRequest')!), /<saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">[^<]+<\/saml:NameID>/);
    assert.match(inflate(logoutRequest.searchParams.get('SAMLRequest')!), /<saml2p:SessionIndex[^>]*>[^<]+</);
    assert.is(await meStatus(first!), 401, 'the old console cookie no longer opens anything');
    assert.is(await ctx.keycloak.userSessions('agate', BOB.username), 0, 'Keycloak ended its session too');
    await shot(page, 'console-saml-signed-out');
    // Keycloak asks for the password again: its session is gone, not just ours.
    await page.click('#sign-in-saml');
    await page.waitForSelector('#username');

    // IdP-initiated (back channel): an admin logs bob out at Keycloak; Keycloak posts a signed LogoutRequest to /ui/saml/slo.
    await keycloakLogin(page, BOB);
    const second = await consoleCookie();
    assert.ok(second && second !== first);
    assert.is(await meStatus(second!), 200);
    // Reached as localhost, Keycloak names itself as the IdP the console trusts (its assertions' Issuer).
    await ctx.keycloak.logoutUser('agate', BOB.username, ctx.keycloak.baseUrl.replace('127.0.0.1', 'localhost'));
    await untilTrue(() => `the console session to end with the Keycloak logout; Agate: ${JSON.stringify(ctx.agate.logs().filter((l) => /saml|logout/i.test(JSON.stringify(l))))}; Keycloak: ${ctx.keycloak.log().split('\n').filter((l) => /logout|saml/i.test(l)).slice(-15).join('\n')}`,
      async () => (await meStatus(second!)) === 401, 10_000);
  } finally {
    await chrome.close();
  }
});

ui('SAML IdP metadata by URL: Agate starts on Keycloak\'s own metadata and sends people to the SSO location it names; metadata it cannot fetch stops the start', async (ctx) => {
  const base = agateConfig({ pg: ctx.pg, issuer: ctx.oidc });
  const withMetadata = (url: string) => (p: AgatePlaces) => `${base(p)}console:
  saml:
    idp_entity_id: ${JSON.stringify(samlIdp(ctx.keycloak))}
    idp_metadata_url: ${JSON.stringify(url)}
    sp_entity_id: ${SAML_SP}
    acs_url: "http://127.0.0.1:${p.apiPort}/ui/saml/acs"
  roles: { claim: groups, approver: [approver] }
`;
  // No certificate file and no SSO URL in the config: both come from Keycloak's descriptor.
  const agate = await startAgateProcess({ configYaml: withMetadata(`${samlIdp(ctx.keycloak)}/protocol/saml/descriptor`) });
  try {
    const res = await fetch(`${agate.apiUrl}/ui/login/saml`, { redirect: 'manual' });
    assert.is(res.status, 302);
    assert.ok(res.headers.get('location')?.startsWith(`${samlIdp(ctx.keycloak)}/protocol/saml?SAMLRequest=`), res.headers.get('location') ?? 'no location');
  } finally {
    await agate.dispose();
  }
  const missing = `${ctx.keycloak.baseUrl.replace('127.0.0.1', 'localhost')}/realms/nowhere/protocol/saml/descriptor`;
  let failure = '';
  try {
    await (await startAgateProcess({ configYaml: withMetadata(missing) })).dispose();
  } catch (err) {
    failure = (err as Error).message;
  }
  assert.match(failure, `console.saml.idp_metadata_url: the IdP metadata at ${missing} cannot be used: HTTP 404`);
});

/** The XML in an HTTP-Redirect binding parameter (base64 of raw DEFLATE). */
function inflate(b64: string): string {
  return inflateRawSync(Buffer.from(b64, 'base64')).toString('utf8');
}

ui('a held psql DROP shows in the live inbox within a second and psql completes once approved with a justification', async (ctx) => {
  const { page } = ctx;
  await asAgent(ctx, 'CREATE TABLE console_doomed (id int)');
  await page.goto(`${ctx.agate.apiUrl}/ui/#/approvals`);
  await page.waitForSelector('#live-state.on');
  const psql = agentPsql(ctx.agate, await ctx.oidc.mint(ctx.oidc.githubActionsClaims()), 'DROP TABLE console_doomed');
  try {
    const { id, card } = await pendingCard(page, psql);
    // Who, what, where, how many, how long.
    assert.is(await card.locator('.subject').textContent(), String(ctx.oidc.githubActionsClaims().sub));
    // Claims and the rule's message may fill in a moment after the card (from the ledger).
    await card.locator('.claims dd').first().waitFor({ timeout: 5000 });
    await card.locator('.message').waitFor({ timeout: 5000 });
    const claims = (await card.locator('.claims').textContent()) ?? '';
    assert.match(claims, String(ctx.oidc.githubActionsClaims().repository));
    assert.match(claims, 'workflow');
    assert.match(claims, 'ref');
    assert.is(await card.locator('pre.command').textContent(), 'DROP TABLE console_doomed');
    assert.is(await card.locator('pre.command .tok-keyword').first().textContent(), 'DROP');
    assert.is(await card.locator('.badge.rule').textContent(), 'drop-needs-dba');
    assert.is(await card.locator('.message').textContent(), "Dropping a table needs a DBA's approval");
    assert.is(await card.locator('.target').textContent(), 'appdb');
    assert.is(await card.locator('.count').textContent(), '0 of 1 approval');
    assert.match((await card.locator('.left').textContent()) ?? '', /^[0-2]:\d\d left$/);
    await shot(page, 'console-inbox');

    // No justification, no answer: the page says so, and the server refuses it too.
    await card.locator('button.approve').click();
    assert.is(await card.locator('.error').textContent(), 'Write a justification first.');
    const blank = await page.evaluate(async (approval) => {
      const me = await (await fetch('/ui/api/me')).json();
      const r = await fetch(`/ui/api/v1/approvals/${approval}/approve`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token }, body: '{"comment":"  "}' });
      return { status: r.status, body: await r.json() };
    }, id);
    assert.is(blank.status, 400);
    assert.match(blank.body.error.message, 'justification is required');
    // Without the session's CSRF token a state change is refused, whatever the cookie.
    const forged = await page.evaluate(async (approval) => {
      const r = await fetch(`/ui/api/v1/approvals/${approval}/approve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"comment":"sneaky"}' });
      return { status: r.status, body: await r.json() };
    }, id);
    assert.is(forged.status, 403);
    assert.is(forged.body.error.code, 'CONSOLE_CSRF');
    await new Promise((r) => setTimeout(r, 300));
    assert.is(await card.count(), 1, 'still pending after the refused attempts');
    assert.is(psql.out.stdout, '', 'psql still waits');

    await card.locator('textarea[name=justification]').fill('Backed up yesterday; the table is unused since v2.');
    await card.locator('button.approve').click();
    assert.is(await psql.exited, 0, psql.out.stderr);
    assert.match(psql.out.stdout, 'DROP TABLE');
    await page.locator(`#settled article.card[data-approval-id="${id}"][data-status="approved"]`).waitFor({ timeout: 15_000 });
    assert.is(await page.locator(`article.card[data-approval-id="${id}"] .count`).textContent(), '1 of 1 approval');
    await shot(page, 'console-approved');
    // The approval is recorded with the console user as the approver and the justification.
    const r = await fetch(`${ctx.agate.apiUrl}/v1/approvals/${id}`, { headers: { authorization: `Bearer ${await ctx.oidc.mint({ sub: 'reader', agate_role: 'approver' })}` } });
    // Accepted answers are the decisions; refused attempts are listed apart (refusals).
    const detail = (await r.json()) as { decisions: { approver_subject: string; approver_issuer: string; comment: string }[]; refusals: unknown[] };
    const accepted = detail.decisions;
    assert.is(accepted.length, 1);
    assert.is(accepted[0]!.approver_issuer, `${ctx.keycloak.baseUrl}/realms/agate`);
    assert.is(accepted[0]!.comment, 'Backed up yesterday; the table is unused since v2.');
  } finally {
    psql.kill();
  }
});

ui('a denied hold refuses the psql statement with the approver\'s reason', async (ctx) => {
  const { page } = ctx;
  await asAgent(ctx, 'CREATE TABLE console_kept (id int)');
  await asAgent(ctx, 'INSERT INTO console_kept VALUES (1)');
  const psql = agentPsql(ctx.agate, await ctx.oidc.mint(ctx.oidc.githubActionsClaims()), 'TRUNCATE console_kept');
  try {
    const { id, card } = await pendingCard(page, psql);
    await card.locator('textarea[name=justification]').fill('Truncating production data is not part of this change.');
    await card.locator('button.deny').click();
    assert.is.not(await psql.exited, 0, psql.out.stderr);
    assert.match(psql.out.stderr, /ERROR: {2}Agate refused/);
    await page.locator(`#settled article.card[data-approval-id="${id}"][data-status="denied"]`).waitFor({ timeout: 15_000 });
    await shot(page, 'console-denied');
    const c = new pg.Client({ host: ctx.pg.host, port: ctx.pg.port, database: ctx.pg.database, user: ctx.pg.users.scram.user, password: ctx.pg.users.scram.password });
    await c.connect();
    const n = await c.query('SELECT count(*)::int AS n FROM console_kept');
    await c.end();
    assert.is(n.rows[0].n, 1, 'nothing was truncated');
  } finally {
    psql.kill();
  }
});

ui('the sessions list leads to a session\'s timeline with the hold, the approval and the final verdict', async (ctx) => {
  const { page } = ctx;
  await page.goto(`${ctx.agate.apiUrl}/ui/#/sessions?subject=${encodeURIComponent(String(ctx.oidc.githubActionsClaims().sub))}`);
  await page.waitForSelector('#sessions tbody tr');
  assert.ok((await page.locator('#sessions tbody tr').count()) >= 3);
  await shot(page, 'console-sessions');
  // Filters by command text and by time, through the form.
  await page.fill('#session-filters input[name=q]', 'drop table console_doomed');
  await page.click('#session-filters button[type=submit]');
  await page.waitForFunction(() => location.hash.includes('q=drop'));
  await page.waitForSelector('#sessions tbody tr');
  assert.is(await page.locator('#sessions tbody tr').count(), 1);
  await page.fill('#session-filters input[name=from]', '2200-01-01T00:00');
  await page.click('#session-filters button[type=submit]');
  await page.locator('p.muted', { hasText: 'No sessions match.' }).waitFor();
  assert.match(page.url(), /from=2(1|2)\d\d-\d\d-\d\dT\d\d%3A\d\d%3A00\.000Z/);
  // The session that ran the approved DROP: open it from the inbox's link.
  await page.goto(`${ctx.agate.apiUrl}/ui/#/approvals`);
  const settled = page.locator('#settled article.card[data-status="approved"]').first();
  await settled.waitFor();
  await settled.locator('a', { hasText: 'session' }).click();
  await page.waitForSelector('#timeline tbody tr');
  const rows = await page.locator('#timeline tbody tr').allTextContents();
  assert.ok(rows.some((r) => /command.*DROP TABLE console_doomed/.test(r)), rows.join('\n'));
  assert.ok(rows.some((r) => /verdict.*hold.*drop-needs-dba/.test(r)), rows.join('\n'));
  // The approver is recorded by their subject at the provider (Keycloak's user id).
  const aliceSub = await page.evaluate(async () => ((await (await fetch('/ui/api/me')).json()) as { subject: string }).subject);
  assert.ok(rows.some((r) => r.includes('approval') && r.includes('Backed up yesterday') && r.includes(aliceSub)), rows.join('\n'));
  assert.ok(rows.some((r) => /verdict.*allow/.test(r)), rows.join('\n'));
  await shot(page, 'console-timeline');
});

ui('a hold needing two approvers waits after the first and runs the moment the second approves', async (ctx) => {
  const { page } = ctx;
  await asAgent(ctx, 'CREATE TABLE console_two (id int)');
  await page.goto(`${ctx.agate.apiUrl}/ui/#/approvals`);
  await page.waitForSelector('#live-state.on');
  ctx.second = await launchChromium();
  const bobPage = ctx.second.page;
  await signIn(bobPage, ctx.agate.apiUrl, BOB);
  const psql = agentPsql(ctx.agate, await ctx.oidc.mint(ctx.oidc.githubActionsClaims()), 'ALTER TABLE console_two ADD COLUMN note text');
  try {
    const id = await heldApproval(psql);
    const aliceCard = page.locator(`article.card[data-approval-id="${id}"]`);
    await aliceCard.and(page.locator('[data-status="pending"]')).waitFor({ timeout: 10_000 });
    assert.is(await aliceCard.locator('.count').textContent(), '0 of 2 approvals');
    await aliceCard.locator('textarea[name=justification]').fill('Adds a nullable column; no rewrite.');
    await aliceCard.locator('button.approve').click();
    await aliceCard.locator('.outcome').waitFor();
    // Bob's inbox counts alice's approval live; the statement still waits for him.
    const bobCard = bobPage.locator(`article.card[data-approval-id="${id}"]`);
    await bobCard.locator('.count', { hasText: '1 of 2 approvals' }).waitFor({ timeout: 10_000 });
    assert.is(await bobCard.getAttribute('data-status'), 'pending');
    assert.is(psql.out.stdout, '', 'psql waits for the second approval');
    await shot(bobPage, 'console-second-approver');
    await bobCard.locator('textarea[name=justification]').fill('Second pair of eyes: fine.');
    await bobCard.locator('button.approve').click();
    assert.is(await psql.exited, 0, psql.out.stderr);
    assert.match(psql.out.stdout, 'ALTER TABLE');
    await page.locator(`#settled article.card[data-approval-id="${id}"][data-status="approved"] .count`, { hasText: '2 of 2 approvals' }).waitFor({ timeout: 15_000 });
  } finally {
    psql.kill();
  }
});

/** Alice's console session (tests may run alone: sign in when the page is not signed in). */
async function asAlice(ctx: Ctx): Promise<Page> {
  await ctx.page.goto(`${ctx.agate.apiUrl}/ui/`);
  const status = await ctx.page.evaluate(async () => (await fetch('/ui/api/me')).status);
  if (status !== 200) await signIn(ctx.page, ctx.agate.apiUrl, ALICE);
  return ctx.page;
}

ui('the Policy page shows the rules in force, tries a command, and backtests a candidate over the record', async (ctx) => {
  const page = await asAlice(ctx);
  await asAgent(ctx, 'CREATE TABLE backtest_items (id int)');
  await asAgent(ctx, 'INSERT INTO backtest_items VALUES (1), (2)');
  await asAgent(ctx, 'DELETE FROM backtest_items WHERE id = 1');
  await asAgent(ctx, 'DELETE FROM backtest_items');
  // The backtest reads the store: wait until the ledger has stored both DELETEs.
  let stored = 0;
  await untilTrue(() => `the ledger to store both DELETEs (stored ${stored})`, async () => {
    stored = await page.evaluate(async () => ((await (await fetch(`/ui/api/v1/commands?q=${encodeURIComponent('DELETE FROM backtest_items')}`)).json()) as { commands?: unknown[] }).commands?.length ?? 0);
    return stored >= 2;
  }, 30_000);
  await page.goto(`${ctx.agate.apiUrl}/ui/#/policy`);
  await page.waitForSelector('#rules tbody tr');
  const rules = await page.locator('#rules tbody tr').allTextContents();
  assert.equal(rules.map((r) => /(drop-needs-dba|alter-needs-two|truncate-needs-dba)/.exec(r)?.[1]), ['drop-needs-dba', 'alter-needs-two', 'truncate-needs-dba']);
  // Try a command: what `agate policy test` answers.
  await page.fill('#try-form textarea[name=text]', 'DROP TABLE users');
  await page.click('#try-form button[type=submit]');
  await page.locator('#try-result .rule', { hasText: 'drop-needs-dba' }).waitFor();
  assert.is(await page.locator('#try-result .badge').first().textContent(), 'hold');
  // The rules in force as their own candidate change nothing over the record (also checks the
  // JSON the page pre-fills reads back as the same policy).
  await page.locator('#backtest-form textarea[name=candidate]').waitFor();
  assert.match(await page.inputValue('#backtest-form textarea[name=candidate]'), '"drop-needs-dba"');
  await page.click('#run-backtest');
  await page.locator('#backtest-summary').waitFor({ timeout: 30_000 });
  assert.match((await page.textContent('#backtest-result')) ?? '', /^0 of \d+ recorded commands.*No verdict would change\./);
  // A candidate that refuses DELETE without WHERE: exactly that recorded DELETE changes.
  await page.evaluate(() => {
    const box = document.querySelector<HTMLTextAreaElement>('#backtest-form textarea[name=candidate]')!;
    const doc = JSON.parse(box.value) as { policy: { rules: unknown[] } };
    doc.policy.rules.unshift({ id: 'no-unbounded-delete', action: 'deny', message: 'say which rows', match: { sql: { statements: ['DeleteStmt'], without_where: true } } });
    box.value = JSON.stringify(doc, null, 2);
  });
  await page.click('#run-backtest');
  await page.waitForSelector('#backtest-changes tbody tr', { timeout: 30_000 });
  const changes = await page.locator('#backtest-changes tbody tr').allTextContents();
  assert.is(changes.length, 1, changes.join('\n'));
  assert.match(changes[0]!, /DELETE FROM backtest_items.*allow.*default.*deny.*no-unbounded-delete.*say which rows/);
  assert.match((await page.textContent('#backtest-summary')) ?? '', /^1 of \d+ recorded commands/);
  assert.match((await page.textContent('#backtest-transitions')) ?? '', /allow → deny 1/);
  await shot(page, 'console-policy');
  // An invalid candidate is refused with the line and key.
  await page.fill('#backtest-form textarea[name=candidate]', 'rules:\n  - { id: x, action: hodl }\n');
  await page.click('#run-backtest');
  assert.match((await page.locator('#backtest-error').textContent()) ?? '', /candidate:2: rules\[0\]\.action/);
});

ui('the Ledger page shows the signed checkpoint, runs a verification, and downloads an inclusion proof that verifies offline', async (ctx) => {
  const page = await asAlice(ctx);
  await page.goto(`${ctx.agate.apiUrl}/ui/#/ledger`);
  await page.waitForSelector('#checkpoint dl, #checkpoint p');
  // The first command ever recorded; its proof is checked offline against the ledger's public key below.
  const { eventId, seq } = await page.evaluate(async () => {
    const me = await (await fetch('/ui/api/me')).json();
    const r = await fetch('/ui/api/v1/sql', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token }, body: JSON.stringify({ sql: 'SELECT command_id, toString(seq) AS seq FROM agate.commands ORDER BY seq LIMIT 1' }) });
    const row = ((await r.json()) as { rows: { command_id: string; seq: string }[] }).rows[0]!;
    return { eventId: row.command_id, seq: row.seq };
  });
  // The ledger signs a checkpoint every 10 s by default; wait for one that covers that record (a
  // checkpoint signed before it was stored does not, and the page says so instead of downloading).
  const size = async () => ((await page.locator('#checkpoint-note').count()) ? Number(await page.textContent('#checkpoint-size')) : 0);
  for (let i = 0; (await size()) < Number(seq); i++) {
    if (i > 60) throw new Error(`no checkpoint covering record ${seq} on the Ledger page after 30 s (size ${await size()})`);
    await new Promise((r) => setTimeout(r, 500));
    await page.reload();
    await page.waitForSelector('#checkpoint dl, #checkpoint p');
  }
  const note = (await page.textContent('#checkpoint-note')) ?? '';
  assert.match(note, /^agate\.local\/ledger\/embedded\n(\d+)\n[A-Za-z0-9+/=]{44}\nchain-head [A-Za-z0-9+/=]{44}\n\n— agate\.local\/ledger /, JSON.stringify(note));
  assert.is(await page.textContent('#checkpoint-size'), note.split('\n')[1]);
  await page.click('#run-verify');
  await page.waitForSelector('#verify-verdict', { timeout: 60_000 });
  assert.is(await page.getAttribute('#verify-verdict', 'data-ok'), 'true', (await page.textContent('#verify-result')) ?? '');
  await shot(page, 'console-ledger');
  await page.fill('#proof-form input[name=event_id]', eventId);
  // The page shows an error instead of downloading when the proof request fails: report it.
  const failed = page.waitForSelector('#proof-result .error', { timeout: 60_000 }).then(async (e) => { throw new Error(`no proof: ${await e.textContent()}`); });
  failed.catch(() => {});
  const [download] = await Promise.all([Promise.race([page.waitForEvent('download', { timeout: 60_000 }), failed]), page.click('#proof-form button[type=submit]')]);
  assert.is(download.suggestedFilename(), `agate-proof-${eventId}.json`);
  const proofPath = join(ctx.agate.dir, 'proof.json');
  await download.saveAs(proofPath);
  assert.is((JSON.parse(readFileSync(proofPath, 'utf8')) as { event_id: string }).event_id, eventId);
  const key = await ctx.agate.cli(['ledger-key', '--config', ctx.agate.configPath]);
  writeFileSync(join(ctx.agate.dir, 'ledger.key'), key.stdout);
  const checked = await ctx.agate.cli(['verify-proof', '--proof', proofPath, '--key', join(ctx.agate.dir, 'ledger.key')]);
  assert.is(checked.code, 0, checked.stdout + checked.stderr);
  assert.match(checked.stdout, new RegExp(`OK: event ${eventId} is record ${seq} of agate\\.local/ledger/embedded`));
});

ui('the SQL page charts activity, runs a query into a table, downloads CSV and keeps saved queries per user', async (ctx) => {
  const page = await asAlice(ctx);
  await asAgent(ctx, 'SELECT 42');
  await page.goto(`${ctx.agate.apiUrl}/ui/#/sql`);
  // Charts: commands by decision (allowed ones at least), top identities (the agent), top denied rules.
  await page.waitForSelector('#chart-decisions svg rect[data-series="allow"]', { timeout: 20_000 });
  const agent = String(ctx.oidc.githubActionsClaims().sub);
  assert.match((await page.textContent('#chart-identities svg')) ?? '', agent);
  await page.waitForSelector('#chart-denied svg, #chart-denied p');
  await page.fill('#sql-editor', 'SELECT subject, count() AS n FROM agate.commands GROUP BY subject ORDER BY n DESC');
  // The ledger stores commands up to a second after they ran (its linger): run the query until two
  // runs a linger apart agree, so that the CSV below (a run of its own) must show the same count.
  const firstRow = async () => {
    await page.click('#run-sql');
    await page.waitForSelector('#sql-rows tbody tr');
    return page.locator('#sql-rows tbody tr').first().locator('td').allTextContents();
  };
  let first = await firstRow();
  for (let tries = 0; tries < 20; tries++) {
    await new Promise((r) => setTimeout(r, 1_500));
    const again = await firstRow();
    if (again.join('\t') === first.join('\t')) break;
    first = again;
  }
  assert.is(first[0], agent);
  assert.ok(Number(first[1]) >= 1, first.join(' '));
  assert.equal(await page.locator('#sql-rows thead th').allTextContents(), ['subject', 'n']);
  await shot(page, 'console-sql');
  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('#download-csv')]);
  const csvPath = join(ctx.agate.dir, 'query.csv');
  await csv.saveAs(csvPath);
  const lines = readFileSync(csvPath, 'utf8').trim().split(/\r?\n/);
  assert.match(lines[0]!, /^"?subject"?,"?n"?$/);
  assert.match(lines[1]!, new RegExp(`^"?${agent}"?,${first[1]}$`));
  // A refused statement shows the server's reason.
  await page.fill('#sql-editor', 'DROP TABLE agate.ledger');
  await page.click('#run-sql');
  await page.waitForSelector('#sql-error');
  // Saved queries survive a reload, in this browser, for this user.
  await page.fill('#sql-editor', 'SELECT count() FROM agate.decisions');
  await page.fill('#query-name', 'all decisions');
  await page.click('#save-query');
  await page.reload();
  await page.locator('#saved-queries button.load', { hasText: 'all decisions' }).click();
  assert.is(await page.inputValue('#sql-editor'), 'SELECT count() FROM agate.decisions');
});

ui('an admin terminates a live psql session: the client gets the reason, the record has who and why', async (ctx) => {
  const page = await asAlice(ctx);
  const agent = new pg.Client({ host: '127.0.0.1', port: ctx.agate.pgPort, database: 'appdb', user: 'agent', password: await ctx.oidc.mint(ctx.oidc.githubActionsClaims()) });
  const failure = new Promise<Error & { code?: string }>((resolve) => agent.on('error', resolve));
  await agent.connect();
  try {
    await agent.query('SELECT 1');
    const sub = String(ctx.oidc.githubActionsClaims().sub);
    const sessionId = await (async () => {
      for (let i = 0; i < 100; i++) {
        const open = await page.evaluate(async (s) => {
          const r = await (await fetch(`/ui/api/v1/sessions?subject=${encodeURIComponent(s)}&limit=1000`)).json();
          return (r.sessions as { session_id: string; closed_at: string | null }[]).filter((x) => x.closed_at === null).map((x) => x.session_id);
        }, sub);
        if (open.length === 1) return open[0]!;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error('no single open session for the agent');
    })();
    await page.goto(`${ctx.agate.apiUrl}/ui/#/sessions/${sessionId}`);
    await page.click('#terminate');
    assert.is(await page.textContent('#terminate-result'), 'Write a reason first.');
    await page.fill('#terminate-form input[name=reason]', 'runaway migration, paging the owner');
    await page.click('#terminate');
    await page.waitForSelector('#terminate-result.ok');
    const err = await failure;
    assert.is(err.code, '57P01');
    const aliceSub = await page.evaluate(async () => ((await (await fetch('/ui/api/me')).json()) as { subject: string }).subject);
    assert.is(err.message, `terminated by administrator ${aliceSub} (${ctx.keycloak.baseUrl}/realms/agate): runaway migration, paging the owner`);
    assert.match((await page.textContent('#terminate-result')) ?? '', err.message);
    await shot(page, 'console-terminated');
    // The end is in the record: the session is closed.
    for (let i = 0; ; i++) {
      const closed = await page.evaluate(async (id) => ((await (await fetch(`/ui/api/v1/sessions/${id}`)).json()) as { session: { closed_at: string | null } }).session.closed_at, sessionId);
      if (closed !== null) break;
      if (i > 100) throw new Error('the session is not recorded as closed');
      await new Promise((r) => setTimeout(r, 100));
    }
    // A second terminate finds nothing live.
    const again = await page.evaluate(async (id) => {
      const me = await (await fetch('/ui/api/me')).json();
      const r = await fetch(`/ui/api/v1/sessions/${id}/terminate`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token }, body: '{"reason":"again"}' });
      return r.status;
    }, sessionId);
    assert.is(again, 404);
  } finally {
    await agent.end().catch(() => undefined);
  }
});

ui('an SSH shell replays in the asciicast player; a SQL session steps statement by statement with its timing', async (ctx) => {
  const page = await asAlice(ctx);
  const ssh = /^([\d.]+):(\d+)$/.exec(String(ctx.agate.started.ssh ?? ''));
  assert.ok(ssh, `agate reported no ssh address: ${JSON.stringify(ctx.agate.started)}`);
  // A compact token: the ssh client cuts passwords at 1023 bytes.
  const token = await ctx.oidc.mint({ sub: ctx.oidc.githubActionsClaims().sub }, { alg: 'ES256' });
  const steps = [['[$#] $', 'echo hello from the console replay; exit\r']];
  const shell = await run('python3', [join(REPO_ROOT, 'test/harness/pty-drive.py'), JSON.stringify(steps), '--', 'sshpass', '-e', '/usr/bin/ssh', '-tt',
    '-p', ssh![2]!, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
    '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', `box@${ssh![1]}`], { env: { ...process.env, SSHPASS: token }, timeoutMs: 60_000 });
  assert.is(shell.code, 0, shell.stdout + shell.stderr);
  // A SQL session of three statements, with a pause before the second.
  const c = new pg.Client({ host: '127.0.0.1', port: ctx.agate.pgPort, database: 'appdb', user: 'agent', password: await ctx.oidc.mint(ctx.oidc.githubActionsClaims()) });
  await c.connect();
  await c.query('SELECT 1 AS stepper_one');
  await new Promise((r) => setTimeout(r, 400));
  await c.query('SELECT 2 AS stepper_two');
  await c.query('CREATE TABLE stepper_three (id int)');
  await c.end();
  const sessionOf = (sql: string) => page.evaluate(async (q) => {
    const me = await (await fetch('/ui/api/me')).json();
    const r = await fetch('/ui/api/v1/sql', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token }, body: JSON.stringify({ sql: q }) });
    return ((await r.json()) as { rows: { session_id: string }[] }).rows[0]?.session_id;
  }, sql);
  let shellSession: string | undefined;
  let sqlSession: string | undefined;
  for (let i = 0; i < 100 && (shellSession === undefined || sqlSession === undefined); i++) {
    // The shell's recording is complete once its own Response (the exit status) is stored.
    shellSession ??= await sessionOf("SELECT session_id FROM agate.decisions WHERE protocol = 'ssh' AND text = 'shell' AND status = 'ok' ORDER BY time DESC LIMIT 1");
    sqlSession ??= await sessionOf("SELECT session_id FROM agate.commands WHERE text = 'CREATE TABLE stepper_three (id int)' LIMIT 1");
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(shellSession && sqlSession, 'both sessions are in the record');

  // The session page leads to the replay page, where the asciicast player runs under its own CSP.
  const violations: string[] = [];
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text()); });
  page.on('pageerror', (e) => violations.push(`page error: ${e.message}`));
  await page.goto(`${ctx.agate.apiUrl}/ui/#/sessions/${shellSession}`);
  await page.click('#play-shells');
  await page.waitForURL(`${ctx.agate.apiUrl}/ui/replay#${shellSession}`);
  const player = page.locator('figure.player').first();
  await player.locator('.ap-player').waitFor();
  const screenText = () => player.locator('.ap-term-text').textContent().then((t) => t ?? '');
  assert.not.match(await screenText(), 'hello');
  await player.locator('select.speed').selectOption('10');
  await player.locator('.ap-player').waitFor();
  await player.locator('.ap-overlay-start').click();
  // What the recorded shell printed (the echo's output line) appears on the player's terminal.
  await page.waitForFunction(() => /^hello from the console replay\s*$/m.test([...document.querySelectorAll('figure.player .ap-term-text .ap-line')].map((l) => l.textContent).join('\n')), undefined, { timeout: 20_000 });
  assert.match(await screenText(), 'echo hello from the console replay; exit'); // the echoed input line
  await shot(page, 'console-replay-ssh');
  // Seeking back to the start (the player's own key: 0 = 0 %) shows the screen as it was then.
  await player.locator('.ap-wrapper').press('0');
  await page.waitForFunction(() => !/hello/.test(document.querySelector('figure.player .ap-term-text')?.textContent ?? ''), undefined, { timeout: 10_000 });
  // ... and playing on from there (space) prints it again.
  await player.locator('.ap-wrapper').press(' ');
  await page.waitForFunction(() => /hello from the console replay/.test(document.querySelector('figure.player .ap-term-text')?.textContent ?? ''), undefined, { timeout: 10_000 });
  assert.equal(violations, [], 'the player runs under the replay page\'s CSP without a violation');
  // The console's other pages do not allow WebAssembly: the player could not run there.
  const csp = await page.evaluate(async () => (await fetch('/ui/')).headers.get('content-security-policy'));
  assert.not.match(csp ?? '', 'wasm-unsafe-eval');

  await page.goto(`${ctx.agate.apiUrl}/ui/#/sessions/${sqlSession}`);
  await page.waitForSelector('#stepper');
  assert.is(await page.textContent('#stepper .step-position'), 'Statement 1 of 3');
  assert.is(await page.textContent('#stepper .step-text'), 'SELECT 1 AS stepper_one');
  assert.match((await page.textContent('#stepper .step-outcome')) ?? '', /allow.*SELECT 1 · 1 rows · [\d.]+ ms/);
  await page.click('#stepper .step-next');
  assert.is(await page.textContent('#stepper .step-position'), 'Statement 2 of 3');
  assert.is(await page.textContent('#stepper .step-text'), 'SELECT 2 AS stepper_two');
  const gap = Number(/· ([\d.]+) s after the previous statement/.exec((await page.textContent('#stepper .step-offset')) ?? '')?.[1]);
  assert.ok(gap >= 0.4 && gap < 5, `the recorded pause before the second statement (${gap} s)`);
  await page.click('#stepper .step-next');
  assert.is(await page.textContent('#stepper .step-text'), 'CREATE TABLE stepper_three (id int)');
  assert.is(await page.isDisabled('#stepper .step-next'), true);
  await shot(page, 'console-replay-sql');
});

ui('signing out ends the session on the server', async ({ page, agate, browser }) => {
  await page.goto(`${agate.apiUrl}/ui/#/approvals`);
  await page.click('#sign-out');
  await page.waitForSelector('#sign-in');
  const res = await page.evaluate(async () => (await fetch('/ui/api/me')).status);
  assert.is(res, 401);
  assert.is((await browser.cookies(`${agate.apiUrl}/ui/`)).find((c) => c.name === 'agate_console'), undefined);
});

ui('signing out ends the inbox stream the session has open in another tab', async (ctx) => {
  const { page, agate, browser } = ctx;
  // Signed in again (the identity provider may still hold its own session, and ask nothing).
  await page.goto(`${agate.apiUrl}/ui/`);
  await page.click('#sign-in');
  const form = page.waitForSelector('#username', { timeout: 15_000 }).then(async () => {
    await page.fill('#username', ALICE.username);
    await page.fill('#password', ALICE.password);
    await page.click('#kc-login');
  }).catch(() => undefined);
  await Promise.race([form, page.waitForSelector('#user-name')]);
  await page.waitForSelector('#user-name');
  // Another tab of the same browser reads the inbox stream as the console's page does.
  const tab = await browser.newPage();
  await tab.goto(`${agate.apiUrl}/ui/assets/style.css`);
  await tab.evaluate(async () => {
    const w = window as unknown as { got: string };
    w.got = '';
    const reader = (await fetch('/ui/api/approvals/stream')).body!.getReader();
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        w.got += new TextDecoder().decode(value);
      }
    })();
  });
  const seen = () => tab.evaluate(() => ({ got: (window as unknown as { got: string }).got }));
  await until('the stream open', async () => ((await seen()).got.includes('event: inbox') ? true : undefined));
  const signedOut = await page.evaluate(async () => {
    const me = (await (await fetch('/ui/api/me')).json()) as { csrf_token: string };
    return (await fetch('/ui/logout', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token }, body: '{}' })).status;
  });
  assert.is(signedOut, 200);
  // A hold made after the sign-out never reaches the signed-out tab: before, the stream went on
  // carrying the inbox (held text included) until its next heartbeat, up to 15 s later.
  const table = `after_signout_${randomBytes(4).toString('hex')}`;
  const psql = agentPsql(ctx.agate, await ctx.oidc.mint(ctx.oidc.githubActionsClaims()), `DROP TABLE IF EXISTS ${table}`);
  try {
    await heldApproval(psql);
    await new Promise((r) => setTimeout(r, 2000));
    const after = await seen();
    assert.ok(after.got.includes('event: inbox'), after.got);
    assert.not.match(after.got, table);
  } finally {
    psql.kill();
    await tab.close();
  }
});

ui.run();
