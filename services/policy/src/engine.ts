import { createHash } from 'node:crypto';
import { K8S_UNREADABLE_BODY, K8S_UNRECORDED_INPUT, type ApprovalConfig, type PolicyConfig, type RuleConfig } from '../../../core/src/config.js';
import { initShellParser, ShellAnalysisCache, type ShellCommand } from '../../../core/src/shell/analyze.js';
import { initSqlParser, SqlAnalysisCache, type SqlAnalysis } from '../../../core/src/sql/analyze.js';
import { lexingChange, lexingRefusal } from '../../../core/src/sql/lexing.js';
import { PREPARED_ATTRIBUTE, preparedBodies } from '../../../core/src/sql/prepared.js';
import type { Command } from '../../../schemas/src/events.js';
import { anyGlob } from '../../../core/src/glob.js';
import { EVERY_TABLE, sqlFacts, type SqlFacts } from '../../../core/src/sql/facts.js';
import { GUARDED_EFFECTS, type SqlEffect } from '../../../core/src/sql/effects.js';
import { STORED_CODE_ATTRIBUTE } from '../../../core/src/sql/stored-code.js';
import { k8sPathRequest, k8sRequest, type K8sRequest } from './k8s-request.js';
import { gitUpdates, type GitUpdate } from './git-push.js';
import { HOOK_TAMPER_RULE, completeCapturedHeader, hookTamper } from './shell-hook.js';

/** Verbs that, without a namespace, act on or answer with the objects of every namespace. */
const ACROSS_NAMESPACES = new Set(['list', 'watch', 'deletecollection']);

/**
 * The requests another request has the effect of, for refusing and holding rules (an allow rule
 * is never widened): an eviction deletes the pod (its disruption budget permitting); a Binding
 * created in the namespace's `bindings` is a `pods/binding`; an
 * ephemeral container (`kubectl debug`) runs a command in the pod as exec would, and a pod given
 * the node (`kubectl debug node/…`) on every pod there; a node's proxy
 * reaches its kubelet, whose API execs into any pod on the node, of any namespace; a pod's or a
 * service's proxy sends HTTP to the pods' ports, as a port-forward would. And every request whose
 * answer carries objects is a read of them too (see {@link readsOf}).
 */
function sameEffect(r: K8sRequest): Array<{ request: K8sRequest; anyNamespace: boolean }> {
  const reads = [...readsOf(r), ...createsOf(r)].map((request) => ({ request, anyNamespace: false }));
  // A pod given the node (privilege fact `host`): root there reaches every pod's containers on it, of any namespace.
  if (r.privilege.includes('host')) reads.push({ request: { ...r, verb: 'create', resource: 'pods/exec', name: '' }, anyNamespace: true });
  if (r.apiGroup !== '') return reads;
  if (r.resource === 'pods/eviction' && r.verb === 'create') return [...reads, { request: { ...r, verb: 'delete', resource: 'pods' }, anyNamespace: false }];
  // A Binding posted to the namespace's `bindings` places the pod its body names, as `pods/binding` does (the name is in the body only).
  if (r.resource === 'bindings' && r.verb === 'create') return [...reads, { request: { ...r, resource: 'pods/binding' }, anyNamespace: false }];
  if (r.resource === 'pods/ephemeralcontainers' && (r.verb === 'update' || r.verb === 'patch')) return [...reads, { request: { ...r, verb: 'create', resource: 'pods/exec' }, anyNamespace: false }];
  // `/api/v1/proxy/…`, the old spelling of the proxy subresources (the verb names it, not a subresource).
  const proxied = r.resource.endsWith('/proxy') ? r.resource.slice(0, -'/proxy'.length) : r.verb === 'proxy' && !r.resource.includes('/') ? r.resource : undefined;
  // A kubelet's API runs commands in any of its pods.
  if (proxied === 'nodes') return [{ request: { ...r, verb: 'create', resource: 'pods/exec', name: '' }, anyNamespace: true }];
  // HTTP to a pod's (or a service's pods') ports: a port-forward by another door.
  if (proxied === 'pods' || proxied === 'services') return [{ request: { ...r, verb: 'create', resource: 'pods/portforward', name: '' }, anyNamespace: false }];
  return reads;
}

/**
 * Built-in resources (`group/resource`, the core group empty) whose update creates the object
 * when none is stored (their strategy allows create on update), as kube-apiserver 1.37 serves
 * them; their `status` subresource shares the strategy, so a PUT there creates the object too
 * (a Service stored with no cluster IP allocated). Custom resources never do.
 */
const CREATED_BY_UPDATE = new Set([
  '/endpoints', '/events', '/limitranges', '/services', 'coordination.k8s.io/leases', 'events.k8s.io/events', 'node.k8s.io/runtimeclasses',
  'rbac.authorization.k8s.io/roles', 'rbac.authorization.k8s.io/clusterroles', 'rbac.authorization.k8s.io/rolebindings', 'rbac.authorization.k8s.io/clusterrolebindings',
]);

/**
 * The create a write may be: a server-side apply creates the object it names when none is stored,
 * and so does an update of a resource in {@link CREATED_BY_UPDATE}; the API server then checks
 * `create` too, and admits the object as created. Whether one is stored Agate cannot know when
 * it decides (it would be a race), so a rule refusing or holding `create` refuses or holds these.
 */
function createsOf(r: K8sRequest): K8sRequest[] {
  const [resource, sub] = r.resource.split('/', 2) as [string, string | undefined];
  const createdByUpdate = CREATED_BY_UPDATE.has(`${r.apiGroup}/${resource}`) && (sub === undefined || sub === 'status');
  const creates = (r.verb === 'update' && createdByUpdate) || (r.apply && (sub === undefined || createdByUpdate));
  return creates ? [{ ...r, verb: 'create', resource }] : [];
}

/** Subresources whose answer is something other than their object; every other one answers with the whole object. */
const SUBRESOURCES_NOT_THE_OBJECT = new Set(['scale', 'eviction', 'binding', 'token', 'log', 'exec', 'attach', 'portforward', 'proxy']);

/**
 * The reads a request's answer amounts to. The API server answers an update, a patch (also
 * `dryRun=All`, which changes nothing) and a delete with the object, a deletecollection with the
 * list of objects, and `status` (like `ephemeralcontainers`, `resize`, a custom resource's
 * status, any subresource not known to answer otherwise) with the whole object whatever the
 * verb; a JSON patch's `test` op answers yes or no about a value. A rule refusing `get` of a
 * resource therefore refuses these too, and a rule masking a resource masks its subresources'
 * answers (masking already counts every verb).
 */
function readsOf(r: K8sRequest): K8sRequest[] {
  const slash = r.resource.indexOf('/');
  if (slash >= 0) {
    const sub = r.resource.slice(slash + 1);
    return SUBRESOURCES_NOT_THE_OBJECT.has(sub) ? [] : [{ ...r, verb: 'get', resource: r.resource.slice(0, slash) }];
  }
  if (r.verb === 'update' || r.verb === 'patch' || r.verb === 'delete') return [{ ...r, verb: 'get' }];
  if (r.verb === 'deletecollection') return [{ ...r, verb: 'list' }];
  return [];
}

/** A non-resource path with repeated slashes collapsed, and that without its trailing slash. */
function pathSpellings(path: string): string[] {
  const collapsed = path.replace(/\/{2,}/g, '/');
  return [collapsed, collapsed.length > 1 ? collapsed.replace(/\/$/, '') : collapsed];
}

export interface PolicyDecision {
  /** `mask`: allowed, with the results the client receives masked by `mask_set`; `hold`: needs approval. */
  decision: 'allow' | 'deny' | 'mask' | 'hold';
  /** The rule that decided; null when the default applied. */
  rule_id: string | null;
  reason: string;
  mask_set: string | null;
  /** With `hold`: who may approve, how many, for how long. */
  approval?: ApprovalConfig;
}

/** What a hold rule without an `approval` section means. */
export const DEFAULT_APPROVAL: ApprovalConfig = { approvers: { claims: {} }, required: 1, timeout_s: 300, allow_self_approval: false };

/** Severity when statements of one command disagree: the strictest wins. */
const SEVERITY = { allow: 0, mask: 1, hold: 2, deny: 3 } as const;

/**
 * Loads the SQL and shell parsers (WASM, asynchronous). Call once at startup, before the first
 * `evaluate`: after that every decision is synchronous.
 */
export async function loadParsers(): Promise<void> {
  await Promise.all([initSqlParser(), initShellParser()]);
}

/** ssh requests whose text is a shell command line (a typed shell line is analysed like an exec). */
const SHELL_TEXT_REQUESTS = new Set(['exec', 'shell-line']);

/** Rule id used when the command cannot be parsed: Agate never allows what it cannot read. */
export const UNPARSEABLE_RULE = 'agate.unparseable';
/** Rule id that refuses a line rebuilt from keystrokes where shell rules apply (see `#inexactLine`). */
export const INEXACT_LINE_RULE = 'agate.shell-line-inexact';

/** Rule id that refuses an Enter typed into a full-screen program where shell rules apply (see `#screenLine`). */
export const SCREEN_LINE_RULE = 'agate.screen-line';

/**
 * Rule id used when a statement has a guarded effect (`dynamic`, `opaque`, `unknown`: what it will
 * run is not in its text) and no allow rule naming that effect matched, or a Kubernetes request
 * carries a body Agate cannot read and no allow rule naming that matched: `default: allow` does
 * not let it through.
 */
export const UNVERIFIABLE_RULE = 'agate.unverifiable';

/**
 * Rule id of a Kubernetes stream whose input reaches a process or a port unrecorded (exec or
 * attach with stdin, port-forward, proxy) that no allow rule with a `kubernetes` condition
 * matched: the policy default does not open it.
 */
export const UNRECORDED_INPUT_RULE = 'agate.unrecorded-input';

/** Rule id of a change to how the server lexes SQL (core/src/sql/lexing.ts): refused whatever the rules. */
export const LEXING_RULE = 'agate.lexing-setting';

/**
 * Rule id of an exec that would carry a file protocol Agate does not read: sftp-server run as a
 * command (`sftp -s /usr/lib/openssh/sftp-server`), or legacy scp's server side in any form but
 * the plain `scp -t|-f PATH`, whose path the proxy decides as a file operation.
 */
export const FILE_TRANSFER_RULE = 'agate.file-transfer-over-exec';

/** Rule id of the built-in refusal of ssh forwarding that no rule allows. */
const FORWARDING_NEEDS_RULE = 'agate.forwarding-needs-rule';

/**
 * ssh forwarding opens only by a rule that names it, whatever the policy default: the verdict
 * says so itself, so the record holds the refusal the proxy enforces (not the default's allow).
 */
const FORWARDING: Readonly<Record<string, string>> = {
  'direct-tcpip': 'port forwarding needs a policy rule that allows it (match.ssh.requests: [direct-tcpip])',
  'tcpip-forward': 'remote port forwarding (-R) needs a policy rule that allows it (match.ssh.requests: [tcpip-forward])',
  'auth-agent': 'agent forwarding (-A) needs a policy rule that allows it (match.ssh.requests: [auth-agent])',
};

interface CompiledRule {
  config: RuleConfig;
  /** The conditions on the SQL statement alone (kinds, effects, tables, WHERE, the guard on dynamic/opaque/unknown). */
  statementMatches(sql: SqlFacts): boolean;
  /** The conditions on who runs it where: protocol, target, claims. */
  identityMatches(command: Command): boolean;
  /** The shell conditions on one simple command of an ssh command line; true for a rule without any. */
  shellMatches(command: ShellCommand | undefined): boolean;
  /** The git conditions on one ref update of a push; true for a rule without any. */
  updateMatches(update: GitUpdate | undefined): boolean;
  /**
   * For an allow rule that masks a Kubernetes resource for the client: whether `command`'s
   * response carries that resource, whatever its verb (see `#clientMask`).
   */
  masksResponseOf(command: Command): boolean;
}

/**
 * A validated policy, ready to evaluate. Evaluation order: for each statement of the command,
 * rules are tried top to bottom and the first whose every condition matches decides; when
 * none matches, the policy default decides. A command is allowed only if every statement is.
 */
export class CompiledPolicy {
  readonly revision: string;
  readonly #rules: CompiledRule[];
  /** Per protocol, the rules without SQL conditions (only those can match a non-SQL command). */
  readonly #byProtocol = new Map<string, CompiledRule[]>();
  /**
   * Per parsed statement, the rules whose SQL conditions it meets: worked out once per distinct
   * text (facts objects come from the parse cache), so a decision only checks identity conditions.
   */
  readonly #candidates = new WeakMap<SqlFacts, CompiledRule[]>();
  /** Per parsed statement, its facts with the `stored` effect (see `#withStored`). */
  readonly #storedFacts = new WeakMap<SqlFacts, SqlFacts>();
  readonly #default: 'allow' | 'deny';
  readonly #auditMaskSet: string;
  /** Whether any rule has shell conditions (then typed shell lines must be exact to pass). */
  readonly #hasShellRules: boolean;
  /** Parsed once per distinct text: a prepared statement executed 10,000 times is parsed once. */
  readonly #sql = new SqlAnalysisCache();
  /**
   * Per cached shape analysis, whether its parse trees change a lexing setting: a walk of every
   * node, done once per distinct shape instead of once per statement decided.
   */
  readonly #shapeLexing = new WeakMap<SqlAnalysis, boolean>();
  /** Parsed once per distinct command line, like SQL. */
  readonly #shell = new ShellAnalysisCache();

  /** `auditMaskSet` is the set `mask_client: true` refers to (config `masking.audit`). */
  constructor(config: PolicyConfig, auditMaskSet = 'default') {
    this.revision = 'sha256:' + createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 16);
    this.#default = config.default;
    this.#auditMaskSet = auditMaskSet;
    this.#rules = config.rules.map(compileRule);
    this.#hasShellRules = config.rules.some((r) => r.match.shell !== undefined);
  }

  evaluate(command: Command): PolicyDecision {
    const d = this.#interactive(command, this.#evaluate(command));
    const a = command.attributes;
    if (command.protocol === 'ssh' && a.request === 'shell-line' && a.exact !== 'true') return sshEnforceable(command, this.#inexactLine(command, d));
    if (command.protocol === 'ssh' && a.request === 'screen-line') return sshEnforceable(command, this.#screenLine(d));
    if (command.protocol === 'ssh' && a.request === 'shell-line' && a.captured !== undefined && d.decision !== 'deny') return sshEnforceable(command, this.#hookIntact(command, d));
    return command.protocol === 'ssh' ? sshEnforceable(command, d) : d;
  }

  /**
   * A command run on a pty (`ssh -tt host vim`) is an interactive session like a shell: what is
   * typed into it (`:!sh`, less's `!`) is keystrokes to a program, which Agate cannot decide. So
   * a rule on `shell` requests decides it too, the stricter of the two verdicts standing.
   */
  #interactive(command: Command, d: PolicyDecision): PolicyDecision {
    const a = command.attributes;
    if (command.protocol !== 'ssh' || (a.request ?? 'exec') !== 'exec' || a.pty !== 'true' || d.decision === 'deny') return d;
    const asShell = this.#evaluate({ ...command, attributes: { ...a, request: 'shell' } });
    if (asShell.rule_id === null || SEVERITY[asShell.decision] <= SEVERITY[d.decision]) return d;
    return { ...asShell, reason: `${asShell.reason} (a command on a pty is an interactive session)` };
  }

  /**
   * A line typed in an interactive shell is rebuilt from keystrokes: the shell may run something
   * else (readline editing, a program that read part of it). Where the policy has shell rules,
   * such a line could slip past them, so it is refused unless a rule refuses or holds it anyway,
   * or — for a line typed without editing keys — an allow rule names `shell-line` explicitly
   * (the operator accepts best effort).
   */
  #inexactLine(command: Command, d: PolicyDecision): PolicyDecision {
    if (d.decision === 'deny' || d.decision === 'hold' || !this.#hasShellRules) return d;
    const rule = d.rule_id === null ? undefined : this.#rules.find((r) => r.config.id === d.rule_id);
    const optedIn = rule?.config.match.ssh?.requests?.includes('shell-line') === true;
    if (optedIn && command.attributes.edited === 'false') return d;
    const why = command.attributes.edited === 'false' ? 'it was rebuilt from keystrokes' : 'it was edited (history, completion, cursor keys), so what the shell runs is unknown';
    return {
      decision: 'deny', rule_id: INEXACT_LINE_RULE, mask_set: null,
      reason: `a line typed in an interactive shell cannot be read exactly (${why}) and this policy has shell rules; run it as a command (ssh host 'command'), which is decided exactly`,
    };
  }

  /**
   * Keys typed into a full-screen program, up to an Enter. The program reads them as it likes and
   * may run commands from them (vim's `:!`, ed's `!`, less's `!`) that no hook reports; and any
   * program can claim the full screen by printing the switch. Where the policy has shell rules,
   * such a line is refused unless an allow rule names `screen-line` (the operator accepts that).
   */
  #screenLine(d: PolicyDecision): PolicyDecision {
    if (d.decision === 'deny' || d.decision === 'hold' || !this.#hasShellRules) return d;
    const rule = d.rule_id === null ? undefined : this.#rules.find((r) => r.config.id === d.rule_id);
    if (rule?.config.match.ssh?.requests?.includes('screen-line') === true) return d;
    return {
      decision: 'deny', rule_id: SCREEN_LINE_RULE, mask_set: null,
      reason: 'keys typed into a full-screen program (or one that switched the terminal to the alternate screen) reach it as typed, and it may run commands from them that Agate cannot see; this policy has shell rules and no allow rule names screen-line',
    };
  }

  /**
   * A command the shell's capture hook reported: whatever the rules say, one that would switch
   * the hook off (shell-hook.ts) is refused, or every command after it would run unseen.
   */
  #hookIntact(command: Command, d: PolicyDecision): PolicyDecision {
    const analysis = this.#shell.analyze(completeCapturedHeader(command.text));
    const why = analysis.ok ? hookTamper(command.text, analysis.commands) : undefined;
    if (why === undefined) return d;
    return { decision: 'deny', rule_id: HOOK_TAMPER_RULE, mask_set: null, reason: `Agate captures what this shell runs, and this command would stop it: ${why}` };
  }

  #changesLexing(analysis: Extract<SqlAnalysis, { ok: true }>): boolean {
    let changes = this.#shapeLexing.get(analysis);
    if (changes === undefined) {
      changes = analysis.statements.some((s) => lexingChange(s.node) !== undefined);
      this.#shapeLexing.set(analysis, changes);
    }
    return changes;
  }

  #evaluate(command: Command): PolicyDecision {
    let statements: (SqlFacts | undefined)[] = [undefined];
    if (command.protocol === 'postgres') {
      // Facts depend on the statement's structure only: texts differing in numbers share a parse.
      const analysis = this.#sql.analyzeShape(command.text);
      if (!analysis.ok) return { decision: 'deny', rule_id: UNPARSEABLE_RULE, reason: `the statement cannot be parsed: ${analysis.error}`, mask_set: null };
      const lexing = this.#changesLexing(analysis) ? lexingRefusal(analysis.statements, () => this.#sql.analyze(command.text)) : undefined;
      if (lexing !== undefined) return { decision: 'deny', rule_id: LEXING_RULE, reason: `Agate pins how the server reads SQL: ${lexing}`, mask_set: null };
      if (analysis.statements.length > 0) {
        statements = [];
        for (const statement of analysis.statements) {
          const f = sqlFacts(statement);
          if (!f.ok) return { decision: 'deny', rule_id: UNPARSEABLE_RULE, reason: `the statement cannot be analysed: ${f.error}`, mask_set: null };
          statements.push(f.facts);
        }
      }
      // `EXECUTE name` is decided as the statement it runs too (the proxy names it), under this policy.
      const prepared = command.attributes[PREPARED_ATTRIBUTE];
      if (prepared !== undefined) {
        const bodies = preparedBodies(this.#sql.analyze(prepared));
        if (bodies === undefined) return { decision: 'deny', rule_id: UNPARSEABLE_RULE, reason: 'the prepared statement it executes cannot be parsed', mask_set: null };
        const executed: SqlFacts[] = [];
        for (const body of bodies) {
          const f = sqlFacts(body);
          if (!f.ok) return { decision: 'deny', rule_id: UNPARSEABLE_RULE, reason: `the prepared statement it executes cannot be analysed: ${f.error}`, mask_set: null };
          executed.push(f.facts);
        }
        statements = [...statements.filter((f) => f !== undefined), ...executed];
      }
      // Code stored in the database that the statement runs (the proxy read the catalog): every
      // statement of the command counts as running it.
      if (command.attributes[STORED_CODE_ATTRIBUTE] !== undefined) statements = statements.map((f) => (f === undefined ? f : this.#withStored(f)));
    }
    let shellCommands: (ShellCommand | undefined)[] = [undefined];
    /** Why bash would evaluate a value of the line as code: allowed only by a rule naming the fact. */
    let evaluates: string | undefined;
    if (command.protocol === 'ssh' && SHELL_TEXT_REQUESTS.has(command.attributes.request ?? 'exec')) {
      // Each simple command is decided like a statement: any deny refuses the line. A line that
      // cannot be read (or would decide its program at run time) is refused whatever the rules.
      // A captured command may be a compound command's header alone (shell-hook.ts).
      const text = command.attributes.captured === undefined ? command.text : completeCapturedHeader(command.text);
      const analysis = this.#shell.analyze(text);
      if (!analysis.ok) return { decision: 'deny', rule_id: UNPARSEABLE_RULE, reason: `the command line cannot be analysed: ${analysis.error}`, mask_set: null };
      const transfer = fileTransferOverExec(analysis.commands);
      if (transfer !== undefined) return { decision: 'deny', rule_id: FILE_TRANSFER_RULE, reason: transfer, mask_set: null };
      if (analysis.commands.length > 0) shellCommands = analysis.commands;
      evaluates = analysis.evaluates;
    }
    // A push is decided per ref update, like the statements of a command line.
    let updates: (GitUpdate | undefined)[] = [undefined];
    if (command.protocol === 'ssh' && command.attributes.request === 'git-push') {
      const read = gitUpdates(command);
      if (read === undefined) return { decision: 'deny', rule_id: UNPARSEABLE_RULE, reason: 'the ref updates of the push cannot be read', mask_set: null };
      updates = read;
    }
    // Any deny wins; then any hold holds the whole command; a mask anywhere masks all its results.
    // Without SQL, who-and-where is the same for every simple command: checked once per rule.
    let eligible: CompiledRule[] | undefined;
    let strictest: PolicyDecision | undefined;
    for (const facts of statements) {
      for (const program of shellCommands) {
        for (const update of updates) {
          const d =
            facts !== undefined
              ? this.#decide(this.#sqlRules(facts), command, program, facts, update)
              : this.#decide((eligible ??= this.#nonSqlRules(command.protocol).filter((r) => r.identityMatches(command))), undefined, program, undefined, update);
          if (d.decision === 'deny') return d;
          if (evaluates !== undefined && d.decision === 'allow' && !this.#namesEvaluation(d)) {
            return { decision: 'deny', rule_id: UNPARSEABLE_RULE, reason: `the command line cannot be analysed: ${evaluates} (no allow rule for it names \`evaluates_names: true\`)`, mask_set: null };
          }
          if (strictest === undefined || SEVERITY[d.decision] > SEVERITY[strictest.decision]) strictest = d;
        }
      }
    }
    if (command.protocol === 'kubernetes') return this.#clientMask(command, this.#recordedInput(command, this.#readableBody(command, strictest!)));
    return strictest!;
  }

  /** Whether the rule that allowed `d` accepts lines in which bash evaluates a value as code. */
  #namesEvaluation(d: PolicyDecision): boolean {
    const rule = d.rule_id === null ? undefined : this.#rules.find((r) => r.config.id === d.rule_id);
    return rule?.config.match.shell?.evaluates_names === true;
  }

  /**
   * A Kubernetes request whose body Agate cannot read (CBOR, YAML it cannot parse, JSON with a
   * repeated key) may do anything its checks look for (mint a token, drop finalizers, write the
   * mask marker over a stored value): like SQL with a guarded effect, neither `default: allow` nor
   * an allow rule lets it through unless the rule names it (`unreadable_body: true`). A hold is
   * kept: a human decides.
   */
  #readableBody(command: Command, d: PolicyDecision): PolicyDecision {
    if (command.attributes.body !== K8S_UNREADABLE_BODY || d.decision === 'deny' || d.decision === 'hold') return d;
    const rule = d.rule_id === null ? undefined : this.#rules.find((r) => r.config.id === d.rule_id);
    if (rule?.config.match.kubernetes?.unreadable_body === true) return d;
    return {
      decision: 'deny', rule_id: UNVERIFIABLE_RULE, mask_set: null,
      reason: 'the request body cannot be read by Agate (a media type other than JSON, YAML or protobuf, YAML it cannot parse, or JSON with a repeated key), so what it does is unknown; only an allow rule with match.kubernetes.unreadable_body: true can allow it',
    };
  }

  /**
   * An upgraded Kubernetes stream whose client bytes reach a process or a port (exec or attach
   * with stdin, a port-forward, a proxy) is relayed unread: the commands typed into `kubectl
   * exec -i … sh` are not in the record. Like ssh forwarding, it opens only by an allow rule with
   * a `kubernetes` condition that matched it, never by the policy default.
   */
  #recordedInput(command: Command, d: PolicyDecision): PolicyDecision {
    if (command.attributes.input !== K8S_UNRECORDED_INPUT || d.decision === 'deny' || d.decision === 'hold') return d;
    const rule = d.rule_id === null ? undefined : this.#rules.find((r) => r.config.id === d.rule_id);
    if (rule?.config.action === 'allow' && rule.config.match.kubernetes !== undefined) return d;
    return {
      decision: 'deny', rule_id: UNRECORDED_INPUT_RULE, mask_set: null,
      reason: 'what this stream sends (exec or attach stdin, a port-forward, a proxy connection) reaches the pod unrecorded, so what it runs is unknown; only an allow rule with a kubernetes condition that matches it (such as resources: [pods/exec]) can allow it, never the policy default',
    };
  }

  /**
   * A rule that masks a resource for the client masks it in every response that carries it: a
   * patch, update, create or delete of a Secret answers with the Secret, so a rule masking
   * `get secrets` would be bypassed by any write verb if only its verbs counted.
   */
  #clientMask(command: Command, d: PolicyDecision): PolicyDecision {
    if ((d.decision !== 'allow' && d.decision !== 'hold') || d.mask_set !== null) return d;
    const rule = this.#nonSqlRules('kubernetes').find((r) => r.masksResponseOf(command));
    if (rule === undefined) return d;
    const { id, mask_client } = rule.config;
    const mask_set = mask_client === true ? this.#auditMaskSet : (mask_client as string);
    const reason = `${d.reason}; the response is masked by rule ${id}`;
    return d.decision === 'allow' ? { ...d, decision: 'mask', reason, mask_set } : { ...d, reason, mask_set };
  }

  /** Facts with the `stored` effect added, made once per facts object (rule candidates are kept per object). */
  #withStored(f: SqlFacts): SqlFacts {
    let s = this.#storedFacts.get(f);
    if (s === undefined) this.#storedFacts.set(f, (s = { ...f, effects: new Set([...f.effects, 'stored']) }));
    return s;
  }

  #sqlRules(facts: SqlFacts): CompiledRule[] {
    let rules = this.#candidates.get(facts);
    if (rules === undefined) {
      rules = this.#rules.filter((r) => ruleProtocolOk(r, 'postgres') && r.statementMatches(facts));
      this.#candidates.set(facts, rules);
    }
    return rules;
  }

  #nonSqlRules(protocol: string): CompiledRule[] {
    let rules = this.#byProtocol.get(protocol);
    if (rules === undefined) {
      rules = this.#rules.filter((r) => r.config.match.sql === undefined && ruleProtocolOk(r, protocol));
      this.#byProtocol.set(protocol, rules);
    }
    return rules;
  }

  /** The first of `rules` that matches decides; `command` given: its identity is still to check. */
  #decide(rules: CompiledRule[], command: Command | undefined, program: ShellCommand | undefined, facts: SqlFacts | undefined, update: GitUpdate | undefined): PolicyDecision {
    for (const rule of rules) {
      if (!rule.shellMatches(program) || !rule.updateMatches(update) || (command !== undefined && !rule.identityMatches(command))) continue;
      const { id, action, message, mask_client } = rule.config;
      const reason = message ?? `${action === 'allow' ? 'allowed' : action === 'hold' ? 'held for approval' : 'denied'} by rule ${id}`;
      if (action === 'hold') return { decision: 'hold', rule_id: id, reason, mask_set: null, approval: rule.config.approval ?? DEFAULT_APPROVAL };
      if (action === 'allow' && mask_client !== false) {
        return { decision: 'mask', rule_id: id, reason, mask_set: mask_client === true ? this.#auditMaskSet : mask_client };
      }
      return { decision: action, rule_id: id, reason, mask_set: null };
    }
    const guarded = this.#default === 'allow' && facts !== undefined ? GUARDED_EFFECTS.filter((e) => facts.effects.has(e)) : [];
    if (guarded.length > 0) {
      const stored = guarded.includes('stored') ? command?.attributes[STORED_CODE_ATTRIBUTE] : undefined;
      const what = stored === undefined ? '' : `: code stored in the database runs with it (${stored})`;
      const reason = `the statement runs SQL that is not in its text (${guarded.join(', ')})${what}; only a rule naming ${guarded.length === 1 ? 'it' : 'them'} in match.sql.effects can allow it`;
      return { decision: 'deny', rule_id: UNVERIFIABLE_RULE, reason, mask_set: null };
    }
    return { decision: this.#default, rule_id: null, reason: `no rule matched; the policy default is ${this.#default}`, mask_set: null };
  }
}

/**
 * What the SSH proxy can enforce, decided here so the recorded verdict is the enforced one:
 * forwarding without a rule naming it is refused, and so is a masking verdict (shell output
 * cannot be masked reliably). Stopping a remote forward (`cancel`) only closes: not refused.
 */
function sshEnforceable(command: Command, d: PolicyDecision): PolicyDecision {
  const request = command.attributes.request ?? 'exec';
  const needsRule = FORWARDING[request];
  if (needsRule !== undefined && command.attributes.cancel !== 'true' && d.rule_id === null && d.decision !== 'deny') {
    return { decision: 'deny', rule_id: FORWARDING_NEEDS_RULE, reason: needsRule, mask_set: null };
  }
  if (d.decision === 'mask') {
    return { decision: 'deny', rule_id: d.rule_id, reason: `rule "${d.rule_id}" asks for masked output, which the SSH proxy cannot provide`, mask_set: null };
  }
  return d;
}

/** Why a command line would move files past the per-operation decisions, or undefined. */
function fileTransferOverExec(commands: ShellCommand[]): string | undefined {
  for (const c of commands) {
    if (c.program === 'sftp-server') return 'sftp-server run as a command carries file operations Agate does not decide; use the sftp subsystem (what sftp and scp use by default), where each operation is decided';
    const scpServer = c.program === 'scp' && c.flags.some((f) => f === '-t' || f === '-f');
    const plain = commands.length === 1 && c.via.length === 0 && c.redirects.length === 0 && c.assignments.length === 0;
    if (scpServer && !plain) return 'legacy scp\'s server side is decided only as the whole command line `scp -t|-f PATH`, where Agate decides the path it writes or reads';
  }
  return undefined;
}

/** A table glob without its schema part (`public.x` → `x`, `*.x` → `x`). */
function unqualified(glob: string): string {
  return glob.slice(glob.lastIndexOf('.') + 1);
}

/** The schema part of a table glob or name; `*` (any) when it has none (`public.x` → `public`). */
function schemaOf(glob: string): string {
  const dot = glob.lastIndexOf('.');
  return dot === -1 ? '*' : glob.slice(0, dot);
}

function ruleProtocolOk(rule: CompiledRule, protocol: string): boolean {
  const p = rule.config.match.protocols;
  return p === undefined || (p as readonly string[]).includes(protocol);
}

/**
 * SQL conditions cut both ways: an `allow` rule matches only when everything in the statement is
 * listed (every nested statement kind, every effect, every table of the access named), so a
 * permitted SELECT cannot carry a DELETE in a CTE; a `deny` or `hold` rule matches when anything
 * listed appears. An `allow` rule, with or without SQL conditions, never matches a statement with
 * a guarded effect (dynamic, opaque, unknown) that its `effects` do not list.
 */
function compileRule(config: RuleConfig): CompiledRule {
  const { claims, targets, protocols, sql, shell } = config.match;
  const shellMatches = compileShell(shell);
  const claimTests = Object.entries(claims ?? {}).map(([name, globs]) => ({ name, test: anyGlob(globs) }));
  const targetTest = targets === undefined ? undefined : anyGlob(targets);
  const kinds = sql?.statements === undefined ? undefined : new Set(sql.statements);
  const effects = sql?.effects === undefined ? undefined : new Set<SqlEffect>(sql.effects);
  const tableTests = [
    { test: sql?.tables, access: undefined },
    { test: sql?.tables_read, access: 'read' },
    { test: sql?.tables_written, access: 'write' },
  ].flatMap(({ test, access }) => (test === undefined ? [] : [{ test: anyGlob(test), access, anySchema: anyGlob(test.map(unqualified)), schemas: anyGlob(test.map(schemaOf)) }]));
  const permissive = config.action === 'allow';
  // An allow rule never lets a guarded effect through unless it names it.
  const guardedEffects = permissive ? GUARDED_EFFECTS.filter((e) => effects === undefined || !effects.has(e)) : [];
  const some = <T>(items: Iterable<T>, test: (v: T) => boolean): boolean => {
    for (const v of items) if (test(v)) return true;
    return false;
  };
  const every = <T>(items: Iterable<T>, test: (v: T) => boolean): boolean => !some(items, (v) => !test(v));
  // Cheapest first: statement kinds are set lookups, globs come after.
  const kindsMatch = (f: SqlFacts): boolean => kinds === undefined || (permissive ? every(f.kinds, (k) => kinds.has(k)) : some(f.kinds, (k) => kinds.has(k)));
  const effectsMatch = (f: SqlFacts): boolean => effects === undefined || (permissive ? every(f.effects, (e) => effects.has(e)) : some(f.effects, (e) => effects.has(e)));
  const sqlMatches = (f: SqlFacts): boolean => {
    for (const { test, access, anySchema, schemas } of tableTests) {
      // A write that also reads its rows (`UPDATE … RETURNING`, a view's query) is a read to a
      // refusing or holding rule; an allow rule on reads is not widened to it.
      const relevant = access === undefined ? f.tables : f.tables.filter((t) => t.access === access || (access === 'read' && !permissive && t.reads === true));
      // An unqualified name resolves through search_path, which the client sets: a deny or hold
      // naming `public.x` also matches a bare `x`, and an allow naming `public.x` does not.
      // A statement reaching tables it does not name (EVERY_TABLE) reaches the listed ones too.
      const named = (t: SqlFacts['tables'][number]) =>
        test(t.name) ||
        (t.qualified !== undefined ? test(t.qualified) : !permissive && anySchema(t.name)) ||
        (!permissive && t.name === EVERY_TABLE && (t.qualified === undefined || schemas(schemaOf(t.qualified))));
      if (relevant.length === 0 || !(permissive ? every(relevant, named) : some(relevant, named))) return false;
    }
    if (sql?.without_where === true && !f.unboundedWrite) return false;
    return true;
  };
  const sshMatches = compileSshMatch(config.match.ssh, permissive);
  const git = compileGit(config.match.git);
  const k8s = config.match.kubernetes;
  // `delete` names deletions, and a deletecollection is many of them.
  const verbTest = k8s?.verbs === undefined || k8s.verbs.includes('*') ? undefined : new Set<string>(k8s.verbs.includes('delete') ? [...k8s.verbs, 'deletecollection'] : k8s.verbs);
  const privilegeTest = k8s?.privilege === undefined ? undefined : k8s.privilege.includes('*') ? () => true : (f: string) => (k8s.privilege as readonly string[]).includes(f);
  const resourceTest = k8s?.resources === undefined ? undefined : anyGlob(k8s.resources.map((r) => r.toLowerCase()));
  const namespaceTest = k8s?.namespaces === undefined ? undefined : anyGlob(k8s.namespaces);
  // Refusing and holding rules read a request as broadly as its effect: an allow rule is never widened.
  const restrictive = config.action !== 'allow';
  /**
   * `anyVerb`: the response question (does this request's answer carry the resource?), where the
   * verb does not count. `anyNamespace`: the request may reach objects of any namespace.
   */
  const requestMatches = (r: K8sRequest, anyVerb: boolean, anyNamespace = false): boolean => {
    if (!anyVerb && verbTest !== undefined && !verbTest.has(r.verb)) return false;
    if (resourceTest !== undefined && !resourceTest(r.resource)) return false;
    if (privilegeTest !== undefined && !r.privilege.some(privilegeTest)) return false;
    if (k8s?.unreadable_body === true && !r.unreadableBody) return false;
    // A request across all namespaces ('') reaches the objects of every namespace: it answers with
    // them, and a list, watch or deletecollection acts on them, so a refusal for one namespace holds.
    return namespaceTest === undefined || anyNamespace || namespaceTest(r.namespace) || (r.namespace === '' && (anyVerb || (restrictive && ACROSS_NAMESPACES.has(r.verb))));
  };
  const pathTest = k8s?.paths === undefined ? undefined : anyGlob(k8s.paths);
  const k8sMatches = (command: Command, anyVerb: boolean): boolean => {
    if (pathTest !== undefined) {
      const p = k8sPathRequest(command);
      if (p === undefined || (!anyVerb && verbTest !== undefined && !verbTest.has(p.verb))) return false;
      // The API server's mux may serve `//metrics` or `/metrics/` as `/metrics`: a refusal counts them.
      return pathTest(p.path) || (restrictive && pathSpellings(p.path).some(pathTest));
    }
    const r = k8sRequest(command);
    if (r === undefined) return false; // a Kubernetes rule never matches what it cannot read
    if (requestMatches(r, anyVerb)) return true;
    if (restrictive) return sameEffect(r).some((e) => requestMatches(e.request, anyVerb, e.anyNamespace));
    // The response question: a status subresource answers with its object, masked as that object.
    return anyVerb && readsOf(r).some((e) => requestMatches(e, anyVerb));
  };
  const masks = config.action === 'allow' && config.mask_client !== false && k8s !== undefined;
  const identityMatches = (command: Command, anyVerb = false): boolean => {
    if (protocols !== undefined && !protocols.includes(command.protocol)) return false;
    if (k8s !== undefined && (command.protocol !== 'kubernetes' || !k8sMatches(command, anyVerb))) return false;
    if (sshMatches !== undefined && (command.protocol !== 'ssh' || !sshMatches(command))) return false;
    if (git !== undefined && !git.repositoryMatches(command)) return false;
    if (targetTest !== undefined && !targetTest(command.target)) return false;
    for (const c of claimTests) {
      const value = claimValue(command, c.name);
      if (value === undefined || !c.test(value)) return false;
    }
    return true;
  };
  return {
    config,
    statementMatches: (facts) =>
      k8s === undefined &&
      shell === undefined &&
      config.match.ssh === undefined &&
      git === undefined &&
      !guardedEffects.some((e) => facts.effects.has(e)) &&
      (sql === undefined || (kindsMatch(facts) && effectsMatch(facts) && sqlMatches(facts))),
    shellMatches,
    updateMatches: git?.updateMatches ?? (() => true),
    identityMatches: (command) => identityMatches(command),
    masksResponseOf: (command) => masks && identityMatches(command, true),
  };
}

/** The shell conditions of a rule, cheapest first; a rule without any matches every command. */
function compileShell(shell: RuleConfig['match']['shell']): (command: ShellCommand | undefined) => boolean {
  if (shell === undefined) return () => true;
  const programTest = shell.commands === undefined ? undefined : anyGlob(shell.commands);
  const argTest = shell.args === undefined ? undefined : anyGlob(shell.args);
  const { flags, download_to_interpreter, evaluates_names } = shell;
  return (c) => {
    if (c === undefined) return false;
    if (download_to_interpreter === true && !c.downloaded) return false;
    if (evaluates_names === true && c.evaluatesNames !== true) return false;
    if (programTest !== undefined && !programTest(c.program)) return false;
    if (flags !== undefined && !flags.every((f) => c.flags.includes(f))) return false;
    return argTest === undefined || c.operands.some(argTest);
  };
}

/**
 * The `git` condition: the push's repository (checked once per command), then each ref update's
 * name, action and whether it is forced (`unknown` counts as forced: Agate could not prove it is not).
 */
function compileGit(match: RuleConfig['match']['git']): { repositoryMatches(c: Command): boolean; updateMatches(u: GitUpdate | undefined): boolean } | undefined {
  if (match === undefined) return undefined;
  const repoTest = match.repositories === undefined ? undefined : anyGlob(match.repositories);
  const refTest = match.refs === undefined ? undefined : anyGlob(match.refs);
  const actions = match.actions === undefined ? undefined : new Set<string>(match.actions);
  return {
    repositoryMatches: (c) => {
      const repo = c.attributes.git_repo;
      if (c.protocol !== 'ssh' || c.attributes.request !== 'git-push' || repo === undefined) return false;
      return repoTest === undefined || repoTest(repo) || repoTest(repo.replace(/\/+$/, '').replace(/\.git$/, ''));
    },
    updateMatches: (u) => {
      if (u === undefined) return false;
      if (refTest !== undefined && !refTest(u.ref)) return false;
      if (actions !== undefined && !actions.has(u.action)) return false;
      return match.forced === undefined || match.forced === (u.forced !== 'false');
    },
  };
}

/** `iss` and `sub` come from the verified identity; other names from its claims. */
function claimValue(command: Command, name: string): string | undefined {
  if (name === 'iss') return command.identity.issuer;
  if (name === 'sub') return command.identity.subject;
  return command.identity.claims[name];
}

/** sftp requests that give a file's content another path: a rename moves it, a hard link shares it. */
const CARRIES_CONTENT = new Set(['rename', 'posix-rename@openssh.com', 'hardlink@openssh.com']);

/**
 * Whether a rule's `operations` name the file operation. A refusing or holding rule on reading or
 * writing a path also matches a rename or hard link of it: the file read or written under its
 * new name is the same file (`ln /secret/key open/k` then `get open/k`), and a rename moves it
 * out from under the rule. An allowing rule matches the operation named only.
 */
function operationMatches(operations: ReadonlySet<string>, a: Record<string, string>, permissive: boolean): boolean {
  if (a.operation === undefined) return false;
  if (operations.has(a.operation)) return true;
  return !permissive && CARRIES_CONTENT.has(a.sftp_request ?? '') && (operations.has('read') || operations.has('write'));
}

/**
 * The `ssh` condition: the request kind (`attributes.request`, exec when absent), the file
 * operation and the paths it names (`attributes.path`, and `attributes.target_path` of a rename
 * or link), each as named and as where it leads on the target (`resolved_path`,
 * `resolved_target_path`: `..`, relative paths and symlinks followed by the proxy). A refusing or
 * holding rule matches when any of them does; an allowing rule only when every path leads where
 * it allows (a rename from an allowed directory to anywhere else is not allowed by it).
 */
function compileSshMatch(match: RuleConfig['match']['ssh'], permissive: boolean): ((command: Command) => boolean) | undefined {
  if (match === undefined) return undefined;
  const requests = match.requests === undefined ? undefined : new Set<string>(match.requests);
  const operations = match.operations === undefined ? undefined : new Set<string>(match.operations);
  const pathTest = match.paths === undefined ? undefined : anyGlob(match.paths);
  return (command) => {
    const a = command.attributes;
    if (requests !== undefined && !requests.has(a.request ?? 'exec')) return false;
    if (operations !== undefined && !operationMatches(operations, a, permissive)) return false;
    if (pathTest !== undefined) {
      if (permissive) {
        const effective = [a.resolved_path ?? a.path, a.target_path === undefined ? undefined : (a.resolved_target_path ?? a.target_path)].filter((p): p is string => p !== undefined);
        if (effective.length === 0 || !effective.every(pathTest)) return false;
      } else {
        const named = [a.path, a.target_path, a.resolved_path, a.resolved_target_path].filter((p): p is string => p !== undefined);
        if (!named.some(pathTest)) return false;
      }
    }
    return true;
  };
}
