// A hostile agent against what people read: the approver's inbox, the session timeline and the
// CLI show text the agent wrote. Through the real proxy (psql), the agent plants a held DROP whose
// text hides itself: a second table 120 blank lines below the first, a Cyrillic letter
// in a table name, a bidi override (Trojan Source), a zero-width space, a carriage return and
// terminal escapes (erase line, an OSC 52 clipboard write), right-to-left letters a browser would
// reorder, and HTML. Headless Chromium signs in through Keycloak and reads the card; the CLI's
// `agate approvals`, `session` and `replay` are run as a person would, into a terminal.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import ssh2 from 'ssh2';
import { startSshd, type SshServer } from '../harness/sshd.js';
import type { Locator, Page } from 'playwright-core';
import { visibleText } from '../../core/src/visible-text.js';
import { startKeycloak, type Keycloak } from '../harness/keycloak.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { until } from '../harness/until.js';
import { agateConfig, agentPsql, REPO_ROOT, startAgateProcess, withSshAndConsole, type AgateProcess, type AgentPsql } from './agate-process.js';
import { keycloakLogin, launchChromium, type Chromium } from './chromium.js';

const SHOTS = join(REPO_ROOT, 'test', 'screenshots');
const ALICE = { username: 'alice', password: `pw-${randomBytes(6).toString('hex')}`, groups: ['approver', 'dba', 'analyst'] };

const POLICY = `policy:
  default: allow
  rules:
    - id: drop-needs-dba
      action: hold
      match: { sql: { statements: [DropStmt] } }
      approval: { approvers: { claims: { groups: dba } }, required: 1, timeout_s: 120 }
    - id: delete-needs-dba
      action: hold
      match: { sql: { statements: [DeleteStmt] } }
      approval: { approvers: { claims: { groups: dba } }, required: 1, timeout_s: 120 }
`;

/**
 * The held statement: what an approver glancing at it would take for dropping a scratch table,
 * with the second table 120 lines down; `vаult` has a Cyrillic а; the comment holds a right-to-left override, a
 * zero-width space, CR + ESC[2K (a terminal erases the line) and OSC 52 (a terminal puts
 * `rm -rf /` on the clipboard), then Hebrew words and numbers a browser would lay out reversed.
 */
const HELD = `DROP TABLE IF EXISTS scratch_tmp /* nightly cleanup */${'\n'.repeat(121)}, v\u0430ult_archive ` +
  `/* \u202e;1 TCELES\u202c\u200b\r\x1b[2K\x1b]52;c;cm0gLXJmIC8=\x07\x1b]0;ok\x07 */ -- 'שלום', 10, 20, 'עולם' </pre><img src=x onerror="document.title='owned'">`;

/** What must never reach a terminal or a page as itself: C0/C1 controls but newline, bidi controls, zero-width characters. */
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/;

interface Ctx { pg: PostgresServer; oidc: OidcIssuer; keycloak: Keycloak; sshd: SshServer; agate: AgateProcess; chrome: Chromium; page: Page }
const surface = suite<Ctx>('surface-hostile: agent text shown to people');

surface.before(async (ctx) => {
  [ctx.pg, ctx.oidc, ctx.keycloak, ctx.sshd] = await Promise.all([startPostgres(), startOidcIssuer(), startKeycloak(), startSshd()]);
  const clientSecret = randomBytes(18).toString('base64url');
  ctx.agate = await startAgateProcess({
    configYaml: withSshAndConsole(agateConfig({ pg: ctx.pg, issuer: ctx.oidc, policy: POLICY }), {
      sshd: ctx.sshd, oidcIssuer: `${ctx.keycloak.baseUrl}/realms/agate`, clientSecret, roles: '{ claim: groups, approver: [approver], analyst: [analyst] }',
    }),
  });
  await ctx.keycloak.createRealm({ name: 'agate', redirectUri: `${ctx.agate.apiUrl}/ui/callback`, users: [ALICE], clientSecret });
  ctx.chrome = await launchChromium();
  ctx.page = ctx.chrome.page;
  await ctx.page.goto(`${ctx.agate.apiUrl}/ui/`);
  await ctx.page.click('#sign-in');
  await keycloakLogin(ctx.page, ALICE);
});

surface.after(async (ctx) => {
  await ctx.chrome?.close();
  await ctx.agate?.dispose();
  await ctx.keycloak?.stop();
  await ctx.oidc?.close();
  await ctx.pg?.stop();
  await ctx.sshd?.stop();
});

const approver = (ctx: Ctx) => ctx.oidc.mint({ sub: 'carol', agate_role: 'approver', groups: 'dba' });
const analyst = (ctx: Ctx) => ctx.oidc.mint({ sub: 'ana', agate_role: 'analyst' });

/** The held statement's approval, as the API records it (the text exactly as the agent sent it). */
async function held(ctx: Ctx, psql: AgentPsql): Promise<{ id: string; text: string; session_id: string }> {
  const id = await until('the hold NOTICE in psql', async () => /approval ([0-9a-f-]{36})/.exec(psql.out.stderr)?.[1], { timeoutMs: 20_000 });
  const tok = await approver(ctx);
  return until('the approval in the API', async () => {
    const r = await fetch(`${ctx.agate.apiUrl}/v1/approvals/${id}`, { headers: { authorization: `Bearer ${tok}` } });
    return r.status === 200 ? ((await r.json()) as { approval: { approval_id: string; text: string; session_id: string } }).approval : undefined;
  }).then((a) => ({ id: a.approval_id, text: a.text, session_id: a.session_id }));
}

/**
 * Each character of `el`'s text with where the browser drew it; consecutive characters on one
 * line must go left to right: the order on screen is the order typed.
 */
async function drawnOutOfOrder(el: Locator): Promise<string[]> {
  return el.evaluate((root) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const boxes: { ch: string; x: number; y: number }[] = [];
    for (let n = walker.nextNode(); n !== null; n = walker.nextNode()) {
      const t = n.textContent ?? '';
      for (let i = 0; i < t.length; i++) {
        if (t[i] === '\n' || /\s/.test(t[i]!)) continue;
        const r = document.createRange();
        r.setStart(n, i);
        r.setEnd(n, i + 1);
        const box = r.getClientRects()[0];
        if (box !== undefined && box.width > 0) boxes.push({ ch: t[i]!, x: box.left, y: box.top });
      }
    }
    const wrong: string[] = [];
    for (let i = 1; i < boxes.length; i++) {
      const [a, b] = [boxes[i - 1]!, boxes[i]!];
      if (Math.abs(a.y - b.y) < 2 && b.x < a.x - 0.5) wrong.push(`${a.ch}@${a.x.toFixed(0)} then ${b.ch}@${b.x.toFixed(0)}`);
    }
    return wrong;
  });
}

surface('the approver\'s card shows the held DROP as it is: every hidden character labelled, blank lines counted, typed order, a note, no markup', async (ctx) => {
  const { page } = ctx;
  await page.goto(`${ctx.agate.apiUrl}/ui/#/approvals`);
  await page.waitForSelector('#live-state.on');
  const psql = agentPsql(ctx.agate, await ctx.oidc.mint(ctx.oidc.githubActionsClaims()), HELD);
  try {
    const hold = await held(ctx, psql);
    // Recorded exactly as sent: nothing is lost before a person sees it.
    assert.ok(hold.text.includes('\u202e') && hold.text.includes('\x1b]52;') && hold.text.includes('v\u0430ult'), JSON.stringify(hold.text));
    const card = page.locator(`article.card[data-approval-id="${hold.id}"]`);
    await card.waitFor({ timeout: 10_000 });
    const pre = card.locator('pre.command');
    const shown = (await pre.textContent()) ?? '';
    assert.is(shown, visibleText(hold.text), 'the card shows the text with each hidden piece as its label');
    assert.not.match(shown, RAW_CONTROL);
    for (const label of ['⟨RLO U+202E⟩', '⟨ZWSP U+200B⟩', '⟨CR U+000D⟩', '⟨ESC U+001B⟩', '⟨BEL U+0007⟩', '⟨Cyrillic U+0430⟩', '⟨120 blank lines⟩']) {
      assert.ok(shown.includes(label), `${label} in ${JSON.stringify(shown)}`);
    }
    assert.is(await pre.locator('.reveal').count() > 8, true, 'the labels are marked');
    // The second table is in view, not 120 lines below the first.
    const box = (await pre.boundingBox())!;
    assert.ok(box.height < 300, `the text is ${box.height.toFixed(0)} px tall`);
    assert.equal(await drawnOutOfOrder(pre), [], 'no character is drawn left of the one typed before it');
    const note = (await card.locator('.reveal-note').textContent()) ?? '';
    for (const what of ['RLO U+202E', 'ZWSP U+200B', 'ESC U+001B ×3', 'Cyrillic U+0430', 'runs of blank lines', 'right-to-left']) assert.ok(note.includes(what), `${what} in the note: ${note}`);
    // HTML in the text stays text.
    assert.is(await card.locator('img').count(), 0);
    assert.is.not(await page.title(), 'owned');
    mkdirSync(SHOTS, { recursive: true });
    await card.screenshot({ path: join(SHOTS, 'console-hostile-card.png') });

    await card.locator('textarea[name=justification]').fill('A second table 120 lines down: no.');
    await card.locator('button.deny').click();
    assert.is.not(await psql.exited, 0, psql.out.stderr);

    // The session's timeline and statement stepper show it the same way.
    await page.goto(`${ctx.agate.apiUrl}/ui/#/sessions/${encodeURIComponent(hold.session_id)}`);
    await page.waitForSelector('#timeline tbody tr');
    const row = page.locator('#timeline tbody tr', { hasText: 'command' }).locator('pre.inline');
    assert.is(await row.textContent(), visibleText(hold.text));
    assert.equal(await drawnOutOfOrder(row), []);
    const step = page.locator('#stepper pre.step-text');
    assert.is(await step.textContent(), visibleText(hold.text));
    assert.match((await page.locator('#stepper .reveal-note').textContent()) ?? '', 'RLO U+202E');
  } finally {
    psql.kill();
  }
});

surface('the CLI never writes the agent\'s control characters to the terminal, and `agate approvals` shows the held text whole', async (ctx) => {
  const psql = agentPsql(ctx.agate, await ctx.oidc.mint(ctx.oidc.githubActionsClaims()), HELD);
  try {
    const hold = await held(ctx, psql);
    const cli = async (args: string[], tok: string) => {
      const r = await ctx.agate.cli([...args, '--config', ctx.agate.configPath, '--token', tok]);
      assert.is(r.code, 0, r.stderr);
      assert.not.match(r.stdout, RAW_CONTROL, `${args[0]} wrote a raw control character: ${JSON.stringify(r.stdout)}`);
      return r.stdout;
    };
    const listed = await cli(['approvals'], await approver(ctx));
    // The table cell is cut to its width; the whole text follows, every hidden piece labelled.
    assert.ok(listed.includes(visibleText(hold.text)), listed);

    const answer = await fetch(`${ctx.agate.apiUrl}/v1/approvals/${hold.id}/deny`, {
      method: 'POST', headers: { authorization: `Bearer ${await approver(ctx)}`, 'content-type': 'application/json' }, body: JSON.stringify({ comment: 'no' }),
    });
    assert.is(answer.status, 200, await answer.text());
    assert.is.not(await psql.exited, 0);

    const reader = await analyst(ctx);
    const replay = await until('the response in the replay', async () => {
      const out = await cli(['replay', hold.session_id], reader);
      return out.includes('DENY') ? out : undefined;
    });
    assert.ok(replay.includes('⟨RLO U+202E⟩') && replay.includes('⟨Cyrillic U+0430⟩'), replay);
    await cli(['session', hold.session_id], reader);
  } finally {
    psql.kill();
  }
});

surface('a held statement\'s bound parameters are on the card: the approver sees which rows, not `$1`', async (ctx) => {
  const { page } = ctx;
  const admin = new pg.Client({ host: ctx.pg.host, port: ctx.pg.port, database: ctx.pg.database, user: ctx.pg.users.scram.user, password: ctx.pg.users.scram.password });
  await admin.connect();
  try {
    await admin.query('CREATE TABLE accounts (id int PRIMARY KEY); INSERT INTO accounts SELECT generate_series(1, 50)');
    await page.goto(`${ctx.agate.apiUrl}/ui/#/approvals`);
    await page.waitForSelector('#live-state.on');
    // node-postgres sends Parse/Bind/Execute: the text says `$1`, the value says every account.
    const agent = new pg.Client({ host: '127.0.0.1', port: ctx.agate.pgPort, database: 'appdb', user: 'agent', password: await ctx.oidc.mint(ctx.oidc.githubActionsClaims()) });
    const notices: string[] = [];
    agent.on('notice', (n) => notices.push(n.message ?? ''));
    await agent.connect();
    const all = `{${Array.from({ length: 50 }, (_, i) => i + 1).join(',')}}`;
    const deleting = agent.query('DELETE FROM accounts WHERE id = ANY($1::int[])', [all]);
    deleting.catch(() => undefined);
    try {
      const id = await until('the hold notice', async () => /approval ([0-9a-f-]{36})/.exec(notices.join('\n'))?.[1], { timeoutMs: 20_000 });
      const card = page.locator(`article.card[data-approval-id="${id}"]`);
      await card.waitFor({ timeout: 10_000 });
      assert.is(await card.locator('pre.command').textContent(), 'DELETE FROM accounts WHERE id = ANY($1::int[])');
      const params = card.locator('.parameters');
      await params.waitFor({ timeout: 10_000 });
      assert.is(await params.locator('dt').textContent(), '$1');
      assert.is(await params.locator('dd').textContent(), all);
      await card.locator('textarea[name=justification]').fill('Every account: no.');
      await card.locator('button.deny').click();
      assert.ok(await deleting.then(() => false, () => true), 'the DELETE is refused');
      assert.is((await admin.query('SELECT count(*)::int AS n FROM accounts')).rows[0].n, 50);
    } finally {
      await agent.end().catch(() => undefined);
    }
  } finally {
    await admin.end();
  }
});

surface('a shell recorded with the window size the agent asked for (1,000,000 × 1,000,000) still replays in the console', async (ctx) => {
  const { page } = ctx;
  const ssh = /^([\d.]+):(\d+)$/.exec(String(ctx.agate.started.ssh ?? ''));
  assert.ok(ssh, JSON.stringify(ctx.agate.started));
  const client = new ssh2.Client();
  // A compact token, as an ssh client sends one (OpenSSH cuts a password at 1,023 bytes).
  const token = await ctx.oidc.mint({ sub: ctx.oidc.githubActionsClaims().sub }, { alg: 'ES256' });
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve()).once('error', reject);
    client.on('keyboard-interactive', (_n, _i, _l, _p, finish) => finish([token]));
    client.connect({ host: ssh![1], port: Number(ssh![2]), username: 'box', tryKeyboard: true });
  });
  try {
    await new Promise<void>((resolve, reject) => client.shell({ term: 'xterm', cols: 1_000_000, rows: 1_000_000 }, (err, stream) => {
      if (err) return reject(err);
      stream.on('data', () => undefined).on('close', () => resolve());
      stream.write('echo huge-window-$((6*7))\nexit\n');
    }));
  } finally {
    client.end();
  }
  const reader = await analyst(ctx);
  const session = await until('the shell\'s recording', async () => {
    const r = await fetch(`${ctx.agate.apiUrl}/v1/sessions?protocol=ssh&limit=5`, { headers: { authorization: `Bearer ${reader}` } });
    for (const s of ((await r.json()) as { sessions: { session_id: string }[] }).sessions) {
      const rec = await fetch(`${ctx.agate.apiUrl}/v1/sessions/${s.session_id}/recordings`, { headers: { authorization: `Bearer ${reader}` } });
      const body = (await rec.json()) as { recordings: { header: { width: number }; events: [number, string, string][] }[] };
      if (body.recordings.some((x) => x.header.width === 1_000_000 && x.events.some((e) => e[2].includes('huge-window-42')))) return s.session_id;
    }
    return undefined;
  }, { timeoutMs: 30_000 });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${ctx.agate.apiUrl}/ui/replay#${session}`);
  const player = page.locator('figure.player').first();
  await player.locator('.ap-player').waitFor({ timeout: 20_000 });
  await player.locator('.ap-overlay-start').click();
  await page.waitForFunction(() => /huge-window-42/.test(document.querySelector('figure.player .ap-term-text')?.textContent ?? ''), undefined, { timeout: 30_000 });
  assert.match((await player.locator('figcaption').textContent()) ?? '', 'recorded at 1000000×1000000');
  assert.equal(errors, []);
});

surface.run();
