import { parseArgs } from 'node:util';
import { parseConfig } from '../core/src/config.js';
import { analyzeSql } from '../core/src/sql/analyze.js';
import { analyzeShell, ShellAnalysisCache } from '../core/src/shell/analyze.js';
import { parseBash } from '../core/src/shell/parser.js';
import { CompiledPolicy, loadParsers } from '../services/policy/src/engine.js';
import type { Command } from '../schemas/src/events.js';
import { SAMPLES } from '../schemas/src/samples.js';

/*
 * Policy decisions per second on one core for a 1,000-rule policy: per-team rules keyed on a
 * repository claim and targets, table rules, statement-kind rules, a few holds and masks, as a
 * large organisation's policy would grow. Commands are a realistic mix: mostly SELECT/INSERT/
 * UPDATE texts an ORM repeats (the parse cache hits), plus DDL and a multi-statement string.
 * Prints decisions/s with the parse cache warm, with every text new (cache always misses), and
 * the cost of one parse alone; then the same for ssh command lines (bash grammar, tree-sitter).
 */
const TEXTS = [
  'SELECT id, name, email FROM customers WHERE region = $1 ORDER BY id LIMIT 50',
  'SELECT o.id, o.total FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.id = $1',
  'INSERT INTO audit_log (actor, note) VALUES ($1, $2)',
  'UPDATE accounts SET balance = balance - $1 WHERE id = $2',
  'DELETE FROM sessions WHERE expires_at < now()',
  'SELECT count(*) FROM events WHERE created_at > now() - interval \'1 hour\'',
  'WITH recent AS (SELECT * FROM orders WHERE created_at > $1) SELECT customer_id, sum(total) FROM recent GROUP BY 1',
  'BEGIN; UPDATE inventory SET qty = qty - 1 WHERE sku = $1; INSERT INTO reservations (sku) VALUES ($1); COMMIT',
  'DROP TABLE tmp_import',
  'ALTER TABLE orders ADD COLUMN note text',
  'GRANT SELECT ON orders TO reporting',
  'TRUNCATE staging_events',
];
/** What agents run over ssh: builds, deploys, inspections, the odd destructive line. */
const SHELL_TEXTS = [
  'uname -a',
  'cd /srv/app && git pull --ff-only && npm ci && npm run build',
  'systemctl status nginx --no-pager | head -n 20',
  'journalctl -u app --since "10 min ago" | grep -i error | tail -n 50',
  'sudo systemctl restart app',
  'tar czf /tmp/backup-$(date +%F).tgz /srv/app/data',
  'find /var/log -name "*.gz" -mtime +7 -print0 | xargs -0 rm -f',
  'docker ps --format "{{.Names}}" | while read n; do docker logs --tail 5 "$n"; done',
  'rm -rf /srv/app/tmp/*',
  'curl -fsSL https://get.example/install.sh | sh',
  "bash -c 'git push --force origin main'",
  'df -h; free -m; uptime',
];
const KINDS = ['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'DropStmt', 'TruncateStmt', 'AlterTableStmt', 'GrantStmt', 'CreateStmt', 'IndexStmt'];
const TABLES = ['customers', 'orders', 'accounts', 'sessions', 'events', 'inventory', 'audit_log', 'payments', 'invoices', 'secrets'];

/** A policy of `n` rules in YAML, the way operators write it. */
function policyYaml(n: number): string {
  const rules: string[] = [];
  for (let i = 0; i < n; i++) {
    const team = `team-${i % 97}`;
    const kind = KINDS[i % KINDS.length]!;
    switch (i % 5) {
      case 0:
        rules.push(`    - { id: r${i}, action: deny, match: { claims: { repository: "acme/${team}-*" }, sql: { statements: [${kind}] } } }`);
        break;
      case 1:
        rules.push(`    - { id: r${i}, action: allow, match: { claims: { repository: "acme/${team}-svc" }, targets: ["db-${i % 40}"] } }`);
        break;
      case 2:
        rules.push(`    - { id: r${i}, action: deny, match: { targets: ["prod-${i % 60}-*"], sql: { tables: [${TABLES[i % TABLES.length]}_${i}] } } }`);
        break;
      case 3:
        rules.push(`    - { id: r${i}, action: hold, match: { claims: { environment: "prod-${i % 13}" }, sql: { statements: [${kind}] } } }`);
        break;
      default:
        if (i % 25 === 24) {
          rules.push(`    - { id: r${i}, action: deny, match: { targets: ["host-${i % 40}"], shell: { commands: [rm, shred], flags: ["-r"], args: ["/srv/${team}*"] } } }`);
          break;
        }
        rules.push(`    - { id: r${i}, action: allow, mask_client: true, match: { claims: { team: "${team}" }, sql: { tables: [${TABLES[i % TABLES.length]}] } } }`);
    }
  }
  return `identity: { dev_issuer: { enabled: true } }\npolicy:\n  default: deny\n  rules:\n${rules.join('\n')}\n`;
}

function shellCommands(count: number, unique: boolean): Command[] {
  return commands(count, unique).map((c, i) => {
    const text = SHELL_TEXTS[i % SHELL_TEXTS.length]!;
    return { ...c, protocol: 'ssh', target: `host-${i % 50}`, attributes: { request: 'exec' }, text: unique ? `${text} # ${i}` : text };
  });
}

function commands(count: number, unique: boolean): Command[] {
  const out: Command[] = [];
  for (let i = 0; i < count; i++) {
    const text = TEXTS[i % TEXTS.length]!;
    out.push({
      ...SAMPLES.Command, target: `db-${i % 50}`,
      identity: { issuer: 'https://token.actions.githubusercontent.com', subject: `repo:acme/app-${i % 300}`, claims: { repository: `acme/team-${i % 120}-svc`, environment: `staging-${i % 7}`, team: `team-${i % 150}` } },
      text: unique ? `${text} /* ${i} */` : text,
    });
  }
  return out;
}

function rate(policy: CompiledPolicy, batch: readonly Command[], minMs: number): { perSecond: number; decisions: number } {
  let decisions = 0;
  const start = performance.now();
  while (performance.now() - start < minMs) {
    for (const c of batch) policy.evaluate(c);
    decisions += batch.length;
  }
  return { perSecond: decisions / ((performance.now() - start) / 1000), decisions };
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { rules: { type: 'string', default: '1000' }, ms: { type: 'string', default: '3000' } } });
  const n = Number(values.rules);
  const ms = Number(values.ms);
  await loadParsers();
  const config = parseConfig(policyYaml(n), 'bench.yaml');
  const warm = new CompiledPolicy(config.policy);
  const mix = commands(6000, false);
  rate(warm, mix, 500); // JIT warm-up
  const cached = rate(warm, mix, ms);
  // A fresh policy and new texts every time: every decision parses (the cache holds 4,096).
  const cold = rate(new CompiledPolicy(config.policy), commands(60_000, true), ms);

  const texts = commands(20_000, true).map((c) => c.text);
  const t0 = performance.now();
  for (const t of texts) analyzeSql(t);
  const parseUs = ((performance.now() - t0) * 1000) / texts.length;

  const shellMix = shellCommands(6000, false);
  rate(warm, shellMix, 500);
  const shellCached = rate(warm, shellMix, ms);
  const shellCold = rate(new CompiledPolicy(config.policy), shellCommands(60_000, true), ms);
  const shellTexts = shellCommands(20_000, true).map((c) => c.text);
  for (const t of shellTexts.slice(0, 2000)) analyzeShell(t); // warm-up
  const t1 = performance.now();
  for (const t of shellTexts) analyzeShell(t);
  const shellParseUs = ((performance.now() - t1) * 1000) / shellTexts.length;
  const t3 = performance.now();
  for (const t of shellTexts) parseBash(t).delete();
  const treeUs = ((performance.now() - t3) * 1000) / shellTexts.length;
  const cache = new ShellAnalysisCache();
  for (const t of SHELL_TEXTS) cache.analyze(t);
  const hits = 1_000_000;
  const t2 = performance.now();
  for (let i = 0; i < hits; i++) cache.analyze(SHELL_TEXTS[i % SHELL_TEXTS.length]!);
  const shellHitUs = ((performance.now() - t2) * 1000) / hits;

  const d = new Map<string, number>();
  for (const c of [...mix.slice(0, 1200), ...shellMix.slice(0, 1200)]) {
    const k = `${c.protocol === 'ssh' ? 'ssh ' : 'sql '}${warm.evaluate(c).decision}`;
    d.set(k, (d.get(k) ?? 0) + 1);
  }
  const row = (name: string, perSecond: number) => console.log(`| ${name} | ${Math.round(perSecond).toLocaleString('en')} | ${(1e6 / perSecond).toFixed(2)} |`);
  console.log(`policy: ${n} rules; SQL mix of ${TEXTS.length} texts and ssh mix of ${SHELL_TEXTS.length} command lines over 300 identities and 50 targets`);
  console.log(`decisions in the mixes: ${[...d].map(([k, v]) => `${k} ${((v / 1200) * 100).toFixed(0)}%`).join(', ')}`);
  console.log('| case | per second (one core) | µs each |');
  console.log('|---|---|---|');
  row('SQL decisions, parse cache warm', cached.perSecond);
  row('SQL decisions, every text new (parse each time)', cold.perSecond);
  row('SQL parse alone (libpg-query WASM)', 1e6 / parseUs);
  row('ssh decisions, parse cache warm', shellCached.perSecond);
  row('ssh decisions, every line new (parse each time)', shellCold.perSecond);
  row('shell parse + analysis alone, uncached (tree-sitter-bash WASM)', 1e6 / shellParseUs);
  row('  of which the tree-sitter parse alone', 1e6 / treeUs);
  row('shell analysis, cache hit', 1e6 / shellHitUs);
  const met = cached.perSecond >= 50_000 && shellCached.perSecond >= 50_000;
  console.log(`target: ≥ 50,000 decisions/s with the cache warm (SQL and ssh): ${met ? 'met' : 'MISSED'}`);
}
