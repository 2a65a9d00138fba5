import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { loadConfig, type AgateConfig } from '../../core/src/config.js';
import { AgateError, describeError } from '../../core/src/errors.js';
import { mintDevToken } from '../../core/src/identity/dev-issuer.js';
import type { SessionRow, TimelineRow } from '../../services/query/src/queries.js';
import { ApiClient } from './api-client.js';
import { visibleText } from '../../core/src/visible-text.js';
import { table } from './format.js';
import { exitWhenFlushed } from './exit.js';
import { isUsageError, UsageError } from './usage.js';
import { renderReplay } from './replay.js';
import { toAsciicast, type Recording } from '../../services/query/src/recording.js';
import type { Protocol } from '../../schemas/src/events.js';
import type { BacktestInput, PolicyTestInput } from './policy-commands.js';
import type { TimelineEvent } from '../../services/query/src/queries.js';

const USAGE = `agate — audit gateway for AI agents and other non-human identities

Usage:
  agate start      --config FILE              run all four services in one process
  agate proxy|policy|ledger|query --config FILE
                                              run one service (needs bus.kind: kafka)
  agate check      --config FILE [--no-files] validate a config file and the files it names
                                              (readable; certificates, keys and SSH keys
                                              parse; keys match their certificates), exit 1
                                              on a problem; --no-files: the text alone
  agate topics     --config FILE [--check] [--json]
                                              create the Kafka topics with the configured
                                              partitions, replication, min.insync.replicas and
                                              retention, or (--check) compare; exit 1 on a
                                              missing or different topic
  agate schema     --config FILE [--cluster NAME]
                                              print the ClickHouse DDL of the store, for one
                                              server or (--cluster) for a cluster: replicated
                                              tables, Distributed tables, ON CLUSTER
  agate policy test --config FILE --sql "…" [--claim K=V ...] [--target T] [--sub S] [--json]
                                              the verdict and deciding rule for one statement
                                              (exit 0 allow/mask, 3 hold, 4 deny)
  agate policy lint --config FILE [--json]    validate the policy; warn about rules that can
                                              never match (exit 1 on warnings)
  agate policy backtest --config FILE --candidate POLICY --since 30d [--until T]
                   [--max-commands N] [--offline] [--json]
                                              decide the recorded commands of the period with
                                              the candidate policy and list every verdict that
                                              would change (exit 0 none, 3 some)
  agate approvals  --config FILE [--status pending|approved|denied|expired|all] [--json]
                                              held commands awaiting (or past) approval
  agate approve    APPROVAL_ID --config FILE [--comment TEXT]
  agate deny       APPROVAL_ID --config FILE [--comment TEXT]
                                              answer a held command (approver role needed)
  agate kubeconfig --config FILE --target NAME [--server URL] [--token-env VAR | --token TOKEN]
                                              a kubeconfig that points kubectl at Agate's
                                              endpoint for a Kubernetes target (token from
                                              $AGATE_TOKEN through an exec plugin by default)
  agate dev-token  --config FILE [--sub S] [--claim K=V ...] [--ttl SECONDS]
                                              mint a token from the dev-only issuer
  agate sessions   --config FILE [--subject S] [--target T] [--limit N] [--json]
  agate session    SESSION_ID --config FILE [--json]
                                              a session's commands with verdicts and results
  agate verify     --config FILE [--offline] [--checkpoint FILE ...] [--key KEY]
                   [--state FILE] [--deep] [--repair-sessions] [--json]
                                              verify the ledger: chains, Merkle roots, and
                                              signed checkpoints kept outside the store
  agate prove      EVENT_ID --config FILE [--checkpoint FILE] [--offline] [--out FILE]
                                              an inclusion proof of one event
  agate consistency OLD NEW --config FILE [--offline] [--key KEY] [--out FILE]
                                              a consistency proof between two checkpoint files
  agate verify-proof --proof FILE --key KEY [--checkpoint FILE]
                                              check a proof offline (no store, no network)
  agate ledger-key --config FILE              the public key auditors verify checkpoints with
  agate ledger-export --config FILE --out FILE
                                              the ledger's rows as JSON lines for a verifier
                                              of its own (tools/verify-chain.py; embedded
                                              store, Agate stopped)
  agate sql        "SELECT …" --config FILE [--format table|json|ndjson|csv]
                                              read-only SQL over the analyst views
  agate replay     SESSION_ID --config FILE [--cast FILE|-]
                                              a session's statements with timing, verdicts, results,
                                              and the output of its interactive shells; --cast
                                              writes the shells as an asciicast v2 file
  agate export     --format ocsf --to ndjson FILE|- --config FILE [--state FILE] [--follow]
  agate export     --format ocsf --to hec URL --config FILE [--state FILE] [--follow]
  agate export     --format ocsf --to kafka TOPIC --config FILE [--brokers H:P,…] [--state FILE] [--follow]
                                              OCSF events for a SIEM; resumes from --state
                                              (default DATA_DIR/export/…); HEC token from
                                              query.export.hec_token or AGATE_HEC_TOKEN; Kafka
                                              brokers from --brokers or bus.brokers
Read commands use the running query API (--url, --token or AGATE_TOKEN);
--offline opens the store directly while Agate is stopped (verify does so
whenever --checkpoint, --state, --deep or --repair-sessions is given).`;

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  sub: { type: 'string' },
  claim: { type: 'string', multiple: true },
  ttl: { type: 'string' },
  subject: { type: 'string' },
  target: { type: 'string' },
  limit: { type: 'string' },
  token: { type: 'string' },
  url: { type: 'string' },
  json: { type: 'boolean' },
  offline: { type: 'boolean' },
  checkpoint: { type: 'string', multiple: true },
  key: { type: 'string' },
  state: { type: 'string' },
  deep: { type: 'boolean' },
  'repair-sessions': { type: 'boolean' },
  proof: { type: 'string' },
  out: { type: 'string' },
  format: { type: 'string' },
  to: { type: 'string' },
  brokers: { type: 'string' },
  follow: { type: 'boolean' },
  sql: { type: 'string' },
  text: { type: 'string' },
  protocol: { type: 'string' },
  status: { type: 'string' },
  comment: { type: 'string' },
  server: { type: 'string' },
  'token-env': { type: 'string' },
  cast: { type: 'string' },
  check: { type: 'boolean' },
  'no-files': { type: 'boolean' },
  candidate: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  'max-commands': { type: 'string' },
  cluster: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

// Each command loads only the modules it uses: a read command or `--help` answers in a fraction of
// the time it takes to load every service (and the embedded engine's bindings) for `agate start`.
const services = () => import('./run-service.js');
const policyCommands = () => import('./policy-commands.js');
const ledgerCommands = () => import('./ledger-commands.js');

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  const [command, ...rest] = positionals;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (command === undefined) throw new UsageError('no command given');
  const config = () => {
    if (values.config === undefined) throw new UsageError(`agate ${command} needs --config FILE`);
    return loadConfig(values.config);
  };
  switch (command) {
    case 'start':
      return (await services()).runServices(config(), (await import('./components.js')).ALL_ROLES);
    case 'policy':
      if (rest[0] === 'test') return (await policyCommands()).policyTest(config(), policyInput(values), values.json === true);
      if (rest[0] === 'lint') return (await policyCommands()).policyLint(config(), values.json === true);
      if (rest[0] === 'backtest') return (await policyCommands()).policyBacktest(config(), backtestInput(values), values.json === true);
      if (rest[0] !== undefined) throw new UsageError(`unknown policy subcommand "${rest[0]}" (test, lint or backtest)`);
      return (await services()).runServices(config(), ['policy']);
    case 'approvals':
      return (await policyCommands()).approvalsCommand(config(), values);
    case 'approve':
    case 'deny':
      if (rest[0] === undefined) throw new UsageError(`agate ${command} needs an APPROVAL_ID`);
      return (await policyCommands()).answerCommand(config(), command, rest[0], values);
    case 'proxy':
    case 'ledger':
    case 'query':
      return (await services()).runServices(config(), [command]);
    case 'topics':
      // The Kafka client is loaded by the commands that use it (see components.ts's openBus).
      return (await import('./topics-command.js')).topicsCommand(config(), values.check === true, values.json === true);
    case 'schema':
      return (await import('./schema-command.js')).schemaCommand(config(), values.cluster);
    case 'check': {
      const checked = config();
      if (values['no-files'] !== true) {
        const { assertConfigFiles, describeFileProblems } = await import('../../core/src/config-files.js');
        for (const line of describeFileProblems(checked.source, assertConfigFiles(checked))) console.error(`agate: warning: ${line}`);
      }
      console.log(`${values.config}: valid`);
      return 0;
    }
    case 'dev-token':
      return devToken(config(), values);
    case 'kubeconfig':
      if (values.target === undefined) throw new UsageError('agate kubeconfig needs --target NAME (a Kubernetes target)');
      process.stdout.write((await import('./kubeconfig.js')).kubeconfigFor(config(), { target: values.target, server: values.server, token: values.token, tokenEnv: values['token-env'] }));
      return 0;
    case 'sessions':
      return sessions(config(), values);
    case 'session':
      if (rest[0] === undefined) throw new UsageError('agate session needs a SESSION_ID');
      return session(config(), rest[0], values);
    case 'verify':
      return (await ledgerCommands()).verifyCommand(config(), values);
    case 'prove':
      if (rest[0] === undefined) throw new UsageError('agate prove needs an EVENT_ID');
      return (await ledgerCommands()).proveCommand(config(), rest[0], values);
    case 'consistency':
      if (rest.length !== 2) throw new UsageError('agate consistency needs two checkpoint files: OLD NEW');
      return (await ledgerCommands()).consistencyCommand(config(), rest[0]!, rest[1]!, values);
    case 'verify-proof':
      return (await ledgerCommands()).verifyProofCommand(values);
    case 'ledger-key':
      return (await ledgerCommands()).ledgerKeyCommand(config());
    case 'ledger-export':
      return (await ledgerCommands()).ledgerExportCommand(config(), values);
    case 'sql':
      if (rest[0] === undefined) throw new UsageError('agate sql needs the SQL text as one argument');
      return sqlCommand(config(), rest[0], values);
    case 'replay':
      if (rest[0] === undefined) throw new UsageError('agate replay needs a SESSION_ID');
      return replay(config(), rest[0], values);
    case 'export':
      return (await import('./export-command.js')).exportCommand(config(), rest, values);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function parseClaims(list: readonly string[] | undefined): Record<string, string> {
  const claims: Record<string, string> = {};
  for (const c of list ?? []) {
    const i = c.indexOf('=');
    if (i <= 0) throw new UsageError(`--claim expects NAME=VALUE, got "${c}"`);
    claims[c.slice(0, i)] = c.slice(i + 1);
  }
  return claims;
}

function policyInput(v: Values): PolicyTestInput {
  if (v.sql === undefined && v.text === undefined) throw new UsageError('agate policy test needs --sql "STATEMENT" (or --text for other protocols)');
  const protocol = v.protocol as Protocol | undefined;
  if (protocol !== undefined && !['postgres', 'ssh', 'kubernetes'].includes(protocol)) throw new UsageError('--protocol must be postgres, ssh or kubernetes');
  return { sql: v.sql, text: v.text, claims: parseClaims(v.claim), target: v.target, protocol, subject: v.sub ?? v.subject };
}

function backtestInput(v: Values): BacktestInput {
  if (v.candidate === undefined) throw new UsageError('agate policy backtest needs --candidate FILE (a policy: section or a whole config file)');
  if (v.since === undefined) throw new UsageError('agate policy backtest needs --since (30d, 12h, or an ISO 8601 time)');
  const max = v['max-commands'] === undefined ? undefined : Number(v['max-commands']);
  if (max !== undefined && (!Number.isInteger(max) || max < 1)) throw new UsageError('--max-commands expects a positive integer');
  return { candidate: v.candidate, since: v.since, until: v.until, maxCommands: max, offline: v.offline === true, token: v.token, url: v.url };
}

async function devToken(config: AgateConfig, v: Values): Promise<number> {
  const dev = config.identity.dev_issuer;
  if (!dev.enabled) throw new UsageError(`${config.source}: identity.dev_issuer.enabled is false; the dev issuer is off`);
  const claims = parseClaims(v.claim);
  const ttl = v.ttl === undefined ? dev.token_ttl_s : Number(v.ttl);
  if (!Number.isInteger(ttl) || ttl <= 0) throw new UsageError('--ttl expects a positive number of seconds');
  console.log(await mintDevToken(config.data_dir, { subject: v.sub ?? 'dev-agent', audience: dev.audience, ttlSeconds: ttl, claims }));
  return 0;
}

async function sessions(config: AgateConfig, v: Values): Promise<number> {
  const api = await ApiClient.fromConfig(config, v.token, v.url);
  const q = new URLSearchParams();
  if (v.subject) q.set('subject', v.subject);
  if (v.target) q.set('target', v.target);
  if (v.limit !== undefined) {
    if (!/^[1-9]\d{0,3}$/.test(v.limit) || Number(v.limit) > 1000) throw new UsageError('--limit expects a number of sessions from 1 to 1000');
    q.set('limit', v.limit);
  }
  const { sessions } = await api.get<{ sessions: SessionRow[] }>(`/v1/sessions?${q}`);
  console.log(v.json ? JSON.stringify(sessions, null, 2) : table(sessions as unknown as Record<string, unknown>[], ['session_id', 'opened_at', 'subject', 'target', 'commands', 'denied', 'closed_at']));
  return 0;
}

async function session(config: AgateConfig, id: string, v: Values): Promise<number> {
  const api = await ApiClient.fromConfig(config, v.token, v.url);
  const body = await api.get<{ session: SessionRow; commands: TimelineRow[] }>(`/v1/sessions/${encodeURIComponent(id)}`);
  if (v.json) {
    console.log(JSON.stringify(body, null, 2));
    return 0;
  }
  const s = body.session;
  console.log(visibleText(`session ${s.session_id}  ${s.protocol}://${s.target}  subject=${s.subject}  issuer=${s.issuer}`));
  console.log(visibleText(`opened ${s.opened_at}  closed ${s.closed_at ?? '(open)'}  from ${s.client_address}`) + '\n');
  // The final decision and who made it (an approver, a timeout, policy), as every interface reports
  // it; digests shortened for the table (the JSON has them whole).
  const rows = body.commands.map((c) => ({
    ...c,
    decided_by: c.decided_by === 'approver' ? `approver ${c.approvers.join(', ')}` : c.decided_by,
    digest: c.digest === null ? null : `${c.digest.slice(0, 19)}…`,
  }));
  console.log(table(rows as unknown as Record<string, unknown>[], ['sequence', 'time', 'decision', 'decided_by', 'rule_id', 'status', 'command_tag', 'rows', 'bytes', 'digest', 'text']));
  return 0;
}

async function sqlCommand(config: AgateConfig, text: string, v: Values): Promise<number> {
  const format = v.format ?? 'table';
  if (!['table', 'json', 'ndjson', 'csv'].includes(format)) throw new UsageError('--format must be table, json, ndjson or csv');
  const api = await ApiClient.fromConfig(config, v.token, v.url);
  const wire = format === 'table' ? 'json' : format;
  const body = await api.request('POST', `/v1/sql?format=${wire}`, JSON.stringify({ sql: text }));
  if (format !== 'table') {
    process.stdout.write(body);
    return 0;
  }
  const rows = (JSON.parse(body) as { rows: Record<string, unknown>[] }).rows;
  console.log(rows.length === 0 ? '(no rows)' : table(rows, Object.keys(rows[0]!)));
  return 0;
}

async function replay(config: AgateConfig, id: string, v: Values): Promise<number> {
  const api = await ApiClient.fromConfig(config, v.token, v.url);
  const { session } = await api.get<{ session: SessionRow }>(`/v1/sessions/${encodeURIComponent(id)}`);
  const events: TimelineEvent[] = [];
  for (let cursor: string | null = null; ; ) {
    const page: { events: TimelineEvent[]; next_cursor: string | null } = await api.get(`/v1/sessions/${encodeURIComponent(id)}/timeline?limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    events.push(...page.events);
    if ((cursor = page.next_cursor) === null) break;
  }
  const recordings = session.protocol === 'ssh' ? (await api.get<{ recordings: Recording[] }>(`/v1/sessions/${encodeURIComponent(id)}/recordings`)).recordings : [];
  if (v.cast !== undefined) {
    const cast = recordings.map(toAsciicast).join('');
    if (v.cast === '-') process.stdout.write(cast);
    else writeFileSync(v.cast, cast);
    if (v.cast === '-') return 0;
  }
  console.log(renderReplay(session, events, recordings));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => exitWhenFlushed(code),
  (err: unknown) => {
    const usage = isUsageError(err);
    if (usage) console.error(`agate: ${(err as Error).message}\n\n${USAGE}`);
    else if (err instanceof AgateError) console.error(`agate: ${err.message}`);
    else console.error(`agate: ${describeError(err)}`);
    return exitWhenFlushed(usage ? 2 : 1);
  },
);
