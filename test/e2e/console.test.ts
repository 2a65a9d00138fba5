// The web console end to end in a real browser: headless Chromium (Debian's, driven by
// playwright-core) signs in through a real Keycloak by OIDC (code + PKCE); a psql statement a
// hold rule matches shows in the live inbox; the approver approves it with a justification and
// psql completes; a second one is denied and psql gets the refusal; the session's timeline shows
// it all. Screenshots of each page go to test/screenshots/ (git-ignored; see README "Console").
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startKeycloak, type Keycloak } from '../harness/keycloak.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { DEFAULT_PG_BIN, startPostgres, type PostgresServer } from '../harness/postgres.js';
import { agateConfig, cleanEnv, REPO_ROOT, startAgateProcess, type AgateProcess } from './agate-process.js';

const SHOTS = join(REPO_ROOT, 'test', 'screenshots');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ALICE = { username: 'alice', password: `pw-${randomBytes(6).toString('hex')}`, groups: ['approver', 'dba', 'analyst'] };
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
query:
`;

interface Ctx {
  pg: PostgresServer; oidc: OidcIssuer; keycloak: Keycloak; agate: AgateProcess;
  profile: string; browser: BrowserContext; page: Page; clientSecret: string; secondProfile?: string; second?: BrowserContext;
}
const ui = suite<Ctx>('console: sign-in and approvals in a real browser');

ui.before(async (ctx) => {
  mkdirSync(SHOTS, { recursive: true });
  [ctx.pg, ctx.oidc, ctx.keycloak] = await Promise.all([startPostgres(), startOidcIssuer(), startKeycloak()]);
  ctx.clientSecret = randomBytes(18).toString('base64url');
  const base = agateConfig({ pg: ctx.pg, issuer: ctx.oidc });
  const issuer = `${ctx.keycloak.baseUrl}/realms/agate`;
  ctx.agate = await startAgateProcess({
    configYaml: (p) => base(p).replace(/^policy:\n[\s\S]*?^query:\n/m, POLICY) + `console:
  oidc:
    issuer: ${JSON.stringify(issuer)}
    client_id: agate-console
    client_secret: { value: ${JSON.stringify(ctx.clientSecret)} }
    redirect_url: "http://127.0.0.1:${p.apiPort}/ui/callback"
  roles: { claim: groups, approver: [approver], analyst: [analyst], auditor: [auditor], admin: [admin] }
`,
  });
  await ctx.keycloak.createRealm({ name: 'agate', redirectUri: `${ctx.agate.apiUrl}/ui/callback`, users: [ALICE, BOB], clientSecret: ctx.clientSecret });
  ctx.profile = mkdtempSync(join(tmpdir(), 'agate-chromium-'));
  ctx.browser = await chromium.launchPersistentContext(ctx.profile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 900 } });
  ctx.page = ctx.browser.pages()[0] ?? (await ctx.browser.newPage());
});

ui.after(async (ctx) => {
  await ctx.second?.close();
  if (ctx.secondProfile) rmSync(ctx.secondProfile, { recursive: true, force: true });
  await ctx.browser?.close();
  if (ctx.profile) rmSync(ctx.profile, { recursive: true, force: true });
  await ctx.agate?.dispose();
  await ctx.keycloak?.stop();
  await ctx.oidc?.close();
  await ctx.pg?.stop();
});

/** psql as the agent, running one statement; resolves with its exit code and output. */
function agentPsql(ctx: Ctx, token: string, sql: string) {
  const env = cleanEnv({ PGHOST: '127.0.0.1', PGPORT: String(ctx.agate.pgPort), PGDATABASE: 'appdb', PGUSER: 'agent', PGSSLMODE: 'disable', PGPASSWORD: token });
  const child = spawn(join(process.env.AGATE_PG_BIN ?? DEFAULT_PG_BIN, 'psql'), ['-X', '-v', 'ON_ERROR_STOP=1', '-c', sql], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '', noticeAt: 0 };
  child.stdout.on('data', (b: Buffer) => (out.stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => {
    out.stderr += b.toString();
    if (out.noticeAt === 0 && /holding this statement/.test(out.stderr)) out.noticeAt = Date.now();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { out, exited, kill: () => child.kill('SIGKILL') };
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
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
  await page.waitForSelector('#username');
  await page.fill('#username', user.username);
  await page.fill('#password', user.password);
  await page.click('#kc-login');
  await page.waitForSelector('#user-name');
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
  await page.fill('#username', ALICE.username);
  await page.fill('#password', ALICE.password);
  await page.click('#kc-login');
  await page.waitForSelector('#user-name');
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

ui('a held psql DROP shows in the live inbox within a second and psql completes once approved with a justification', async (ctx) => {
  const { page } = ctx;
  await asAgent(ctx, 'CREATE TABLE console_doomed (id int)');
  await page.goto(`${ctx.agate.apiUrl}/ui/#/approvals`);
  await page.waitForSelector('#live-state.on');
  const psql = agentPsql(ctx, await ctx.oidc.mint(ctx.oidc.githubActionsClaims()), 'DROP TABLE console_doomed');
  try {
    await until('the hold NOTICE in psql', () => (psql.out.noticeAt > 0 ? true : undefined));
    const id = /approval ([0-9a-f-]{36})/.exec(psql.out.stderr)![1]!;
    const card = page.locator(`article.card[data-approval-id="${id}"][data-status="pending"]`);
    await card.waitFor({ timeout: 10_000 });
    const shownAfterMs = Date.now() - psql.out.noticeAt;
    console.log(`  hold shown in the inbox ${shownAfterMs} ms after psql printed the NOTICE`);
    assert.ok(shownAfterMs <= 1000, `the hold appeared within a second (${shownAfterMs} ms)`);
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
  const psql = agentPsql(ctx, await ctx.oidc.mint(ctx.oidc.githubActionsClaims()), 'TRUNCATE console_kept');
  try {
    await until('the hold NOTICE in psql', () => (psql.out.noticeAt > 0 ? true : undefined));
    const id = /approval ([0-9a-f-]{36})/.exec(psql.out.stderr)![1]!;
    const card = page.locator(`article.card[data-approval-id="${id}"][data-status="pending"]`);
    await card.waitFor({ timeout: 10_000 });
    const shownAfterMs = Date.now() - psql.out.noticeAt;
    console.log(`  hold shown in the inbox ${shownAfterMs} ms after psql printed the NOTICE`);
    assert.ok(shownAfterMs <= 1000, `the hold appeared within a second (${shownAfterMs} ms)`);
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
  ctx.secondProfile = mkdtempSync(join(tmpdir(), 'agate-chromium-'));
  ctx.second = await chromium.launchPersistentContext(ctx.secondProfile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 900 } });
  const bobPage = ctx.second.pages()[0] ?? (await ctx.second.newPage());
  await signIn(bobPage, ctx.agate.apiUrl, BOB);
  const psql = agentPsql(ctx, await ctx.oidc.mint(ctx.oidc.githubActionsClaims()), 'ALTER TABLE console_two ADD COLUMN note text');
  try {
    await until('the hold NOTICE in psql', () => (psql.out.noticeAt > 0 ? true : undefined));
    const id = /approval ([0-9a-f-]{36})/.exec(psql.out.stderr)![1]!;
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

ui('signing out ends the session on the server', async ({ page, agate, browser }) => {
  await page.goto(`${agate.apiUrl}/ui/#/approvals`);
  await page.click('#sign-out');
  await page.waitForSelector('#sign-in');
  const res = await page.evaluate(async () => (await fetch('/ui/api/me')).status);
  assert.is(res, 401);
  assert.is((await browser.cookies(`${agate.apiUrl}/ui/`)).find((c) => c.name === 'agate_console'), undefined);
});

ui.run();
