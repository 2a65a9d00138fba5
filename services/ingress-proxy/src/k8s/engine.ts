import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Bus } from '../../../../core/src/bus/bus.js';
import { K8S_RECORDED_INPUT, K8S_UNREADABLE_BODY, K8S_UNRECORDED_INPUT } from '../../../../core/src/config.js';
import { ErrorCode, describeError } from '../../../../core/src/errors.js';
import type { Logger } from '../../../../core/src/log.js';
import { nowMicros, type Command, type Response } from '../../../../schemas/src/events.js';
import { CHANNEL_PROTOCOLS } from './channels.js';
import { clientMasker, decide, decideHere, DEADLINE_RULE, UNASKED_RULE } from '../decide.js';
import type { Masker } from '../masking/masker.js';
import { accessQuestion, combineAccess, questionAttributes, reviewKind, rulesReview, selfReview, type PolicyAnswer, type Question } from './access-review.js';
import { impersonates, upgradeHead, upstreamHeaders } from './headers.js';
import { privilegeFacts } from './privilege.js';
import { bodySample, refusedEvent, sha256, type K8sRecording } from './recording.js';
import { maskMarkers, readBody, valueReadingOps, type ReadBody } from './request-body.js';
import { classifyRequest, droppedParameter, maskedRequestText, normalizedTarget, parseTarget, requestAttributes, requestText, type RequestInfo } from './request-info.js';
import type { KubeSession } from './session.js';
import { dryRunOf } from './dry-run.js';
import { failure, forbidden, maskedRead, maskedWrite, type Status } from './status.js';
import type { UpgradeOutcome } from './upgrade.js';

/** The built-in rule that allows discovery without asking policy (it is still recorded). */
export const DISCOVERY_RULE = 'agate.k8s-discovery';
/** The built-in rule that refuses impersonation (`kubectl --as`) before policy is asked. */
export const IMPERSONATION_RULE = 'agate.k8s-impersonation';
const DISCOVERY = /^\/(api|apis(\/[^/]+){0,2}|api\/v1|version|openapi\/.*|livez|readyz|healthz)\/?$/;

/** Verbs whose body is stored: a mask marker in it would replace the real value. */
const WRITE_VERBS = new Set(['create', 'update', 'patch']);

/** exec, attach and port-forward are asked for with GET over WebSocket or SPDY; RBAC (and so policy) sees `create`. */
const UPGRADE_SUBRESOURCES = new Set(['exec', 'attach', 'portforward']);

/** One request as the transport read it: nothing here is trusted yet. */
interface KubeRequest {
  method: string;
  /** The request target as sent: path and query. */
  target: string;
  headers: IncomingHttpHeaders;
  /** The whole body; undefined when it was larger than the target's `maxBodyBytes` (the rest discarded). */
  body: Buffer | undefined;
}

/** An upgrade request (exec, attach, port-forward): its head is rebuilt from the raw header list. */
interface KubeUpgradeRequest extends KubeRequest {
  /** Name, value, name, value… as the client sent them. */
  rawHeaders: readonly string[];
}

/**
 * What the transport does with a request. `info` tells it how to render a Status (a
 * non-resource request's error is text, see relay.ts `sendStatus`). Every refusal is already on
 * its way to the record when the plan is returned.
 */
export type Plan = { kind: 'refuse'; status: Status; info: RequestInfo | undefined } | Forward;

/** A request decided to run: recorded (write-ahead) and allowed, with what to send the API server. */
export interface Forward {
  kind: 'forward';
  command: Command;
  info: RequestInfo;
  method: string;
  /** The normalized request target (see request-info.ts). */
  path: string;
  /** The client's headers without its token, impersonation or compression, plus Agate's credential. */
  headers: OutgoingHttpHeaders;
  body: Buffer;
  /** The mask set the client's copy goes through; undefined: delivered as the API server sent it. */
  client: Masker | undefined;
  /** Rewrites a (self) access review's answer for the agent (see access-review.ts). */
  rewrite: ((doc: unknown) => Promise<void>) | undefined;
  /** A watch: relayed event by event when the API server accepts it (200). */
  watch: boolean;
}

type UpgradePlan =
  | { kind: 'refuse'; status: Status }
  /** `read`: the subprotocols offered the API server for an exec or attach Agate reads and records (stream-tap.ts); undefined: relayed as bytes. */
  | { kind: 'upgrade'; command: Command; info: RequestInfo; head: string; read: readonly string[] | undefined };

interface KubeEngineOptions {
  bus: Bus;
  verdictTimeoutMs: number;
  log: Logger;
  target: {
    name: string;
    recording: K8sRecording;
    /** Every configured mask set by name (verdicts and the target name them). */
    maskers: ReadonlyMap<string, Masker>;
    /** The set every client response is masked with; undefined: only when policy says. */
    maskClient: string | undefined;
    maxBodyBytes: number;
    allowDiscovery: boolean;
  };
  upstream: {
    /** `host[:port]` of the API server, for an upgrade's Host header. */
    host: string;
    /** Agate's own credential for the next request (an exec plugin may fail). */
    credential(): Promise<Record<string, string>>;
  };
}

type Decision = { kind: 'run'; client: Masker | undefined } | { kind: 'refuse'; status: Status; code: string };

/**
 * The Kubernetes API proxy's decisions, with no socket: a request comes in as method, target,
 * headers, body and the session of its identity; out comes a refusal (a `Status`) or what to
 * forward. On the way every request is classified as the API server does, recorded as a Command
 * (write-ahead: durable before anything is forwarded), and decided by policy; the refusal and
 * failure events are recorded here too. Moving bytes is the server's job (server.ts).
 */
export class KubeEngine {
  readonly #options: KubeEngineOptions;

  constructor(options: KubeEngineOptions) {
    this.#options = options;
  }

  /** Decides one request of `session`. */
  async request(session: KubeSession, req: KubeRequest): Promise<Plan> {
    const url = parseTarget(req.target);
    const info = classifyRequest(req.method, url);
    if (info.kind === 'invalid') return this.#refuseUnreadable(session, req, url, info.message);
    const path = normalizedTarget(url);
    const { body } = req;
    const read = body === undefined || body.length === 0 ? undefined : readBody(body, req.headers['content-type'], req.headers['content-encoding']);
    // Before the sample is masked: masking writes the very marker looked for.
    const marked = read === undefined || !WRITE_VERBS.has(info.verb) ? [] : maskMarkers(read, body!);
    const command = this.#command(session, req, path, info, read);
    if (info.kind === 'resource' && info.verb === '') return this.#refuse(session, command, info, noVerb(req.method, info), ErrorCode.PROTOCOL_VIOLATION, true);
    const dropped = droppedParameter(url);
    if (dropped !== undefined) return this.#refuse(session, command, info, badQuery(dropped, info), ErrorCode.PROTOCOL_VIOLATION, true);
    if (body === undefined) {
      const status = failure('RequestEntityTooLarge', `the request body is larger than ${this.#options.target.maxBodyBytes} bytes, the most Agate records`, info);
      return this.#refuse(session, command, info, status, ErrorCode.PROTOCOL_FRAME_TOO_LARGE, true);
    }
    if (marked.length > 0) return this.#refuse(session, command, info, maskedWrite(info, marked), ErrorCode.MASKED_VALUE_WRITE, true);
    const decision = await this.#decide(session, command, info, req.headers);
    if (decision.kind === 'refuse') return this.#refuse(session, command, info, decision.status, decision.code, false);
    const reads = decision.client === undefined || read === undefined ? [] : valueReadingOps(read);
    if (reads.length > 0) return this.#refuse(session, command, info, maskedRead(info, reads), ErrorCode.MASKED_VALUE_READ, false);
    let credential: Record<string, string>;
    try {
      credential = await this.#options.upstream.credential();
    } catch (err) {
      return { kind: 'refuse', status: this.#credentialFailed(session, command, info, err), info };
    }
    return {
      kind: 'forward', command, info, method: req.method, path,
      headers: upstreamHeaders(req.headers, credential, body.length), body, client: decision.client, rewrite: this.#review(session, info, req.headers),
      // The verb as the API server decides it: a named GET ignores `watch`, a list with it streams.
      watch: info.kind === 'resource' && info.verb === 'watch',
    };
  }

  /** Decides an upgrade request; a run one comes with the request head to send the API server. */
  async upgrade(session: KubeSession, req: KubeUpgradeRequest): Promise<UpgradePlan> {
    const url = parseTarget(req.target);
    const info = classifyRequest(req.method, url);
    if (info.kind === 'invalid') return this.#refuseUnreadable(session, req, url, info.message);
    const decided: RequestInfo = info.kind === 'resource' && info.verb === 'get' && UPGRADE_SUBRESOURCES.has(info.subresource) ? { ...info, verb: 'create' } : info;
    const path = normalizedTarget(url);
    const command = this.#command(session, req, path, decided, undefined);
    command.attributes.upgrade = String(req.headers.upgrade ?? '').slice(0, 64);
    const read = readableStream(decided, req.headers);
    // Unrecorded: policy allows it only by a rule that names it (services/policy/src/engine.ts).
    if (carriesInput(decided, url)) command.attributes.input = read === undefined ? K8S_UNRECORDED_INPUT : K8S_RECORDED_INPUT;
    if (read !== undefined) command.attributes.stream = 'recorded';
    if (decided.kind === 'resource' && decided.verb === '') return this.#refuse(session, command, decided, noVerb(req.method, decided), ErrorCode.PROTOCOL_VIOLATION, true);
    const dropped = droppedParameter(url);
    if (dropped !== undefined) return this.#refuse(session, command, decided, badQuery(dropped, decided), ErrorCode.PROTOCOL_VIOLATION, true);
    if (declaresBody(req.headers)) {
      // Bytes after the head are relayed only once the API server switched protocols: a body
      // Agate never reads has no place in an upgrade, so its framing is not guessed at.
      const status = failure('BadRequest', 'Agate refused the upgrade request: it declares a body (Content-Length or Transfer-Encoding), which an upgrade request does not carry', decided);
      return this.#refuse(session, command, decided, status, ErrorCode.PROTOCOL_VIOLATION, true);
    }
    const decision = await this.#decide(session, command, decided, req.headers);
    if (decision.kind === 'refuse') return this.#refuse(session, command, decided, decision.status, decision.code, false);
    if (decision.client !== undefined) {
      // An upgraded connection is relayed as bytes: what must be masked cannot go through it.
      const status = failure('Forbidden', 'Agate refused the request: policy requires its response masked, which Agate cannot do over an upgraded (WebSocket or SPDY) connection', decided);
      return this.#refuse(session, command, decided, status, ErrorCode.MASKING_FAILED, false);
    }
    let credential: Record<string, string>;
    try {
      credential = await this.#options.upstream.credential();
    } catch (err) {
      return { kind: 'refuse', status: this.#credentialFailed(session, command, decided, err) };
    }
    return { kind: 'upgrade', command, info: decided, read, head: upgradeHead(req.method, path, req.rawHeaders, this.#options.upstream.host, credential, read) };
  }

  /** The API server could not be reached (or its certificate did not verify): recorded; the Status for the client. */
  upstreamFailed(session: KubeSession, command: Command, info: RequestInfo, err: Error): Status {
    const message = upstreamFailure(err, this.#options.target.name);
    this.#options.log.warn('upstream request failed', { error: describeError(err) });
    void session.events.emitLogged(refusedEvent(command, 'error', ErrorCode.UPSTREAM_UNREACHABLE, message));
    return failure('ServiceUnavailable', message, info, 502);
  }

  /** The client left before the API server answered. */
  clientGone(session: KubeSession, command: Command): void {
    void session.events.emitLogged(refusedEvent(command, 'error', 'CLIENT_GONE', 'the client closed the connection before the API server answered'));
  }

  /**
   * Records how an upgraded connection went; the Status for the client when the API server was
   * never reached. `channels`: a read stream's totals per channel.
   */
  upgraded(session: KubeSession, command: Command, info: RequestInfo, outcome: UpgradeOutcome, channels?: Pick<Response, 'columns' | 'sample' | 'rows'>): Status | undefined {
    if (outcome.kind === 'unreachable') {
      const message = upstreamFailure(outcome.error, this.#options.target.name);
      void session.events.emitLogged(refusedEvent(command, 'error', ErrorCode.UPSTREAM_UNREACHABLE, message));
      return failure('ServiceUnavailable', message, info, 502);
    }
    const ok = outcome.code === 101 && outcome.failed === undefined;
    const { failed } = outcome;
    void session.events.emitLogged({
      type: 'Response', event_id: randomUUID(), time: nowMicros(), session_id: session.id, command_id: command.event_id,
      status: ok ? 'ok' : 'error', command_tag: `${outcome.code} upgrade, ${outcome.bytesUp} bytes up, ${outcome.bytesDown} bytes down`,
      rows: channels?.rows ?? 0, bytes: outcome.bytesDown, duration_us: outcome.durationUs,
      error_code: failed !== undefined ? failed.code : ok ? null : String(outcome.code),
      error_message: failed !== undefined ? `Agate ended the stream: ${failed.message}` : ok ? null : `the API server answered the upgrade with ${outcome.statusLine}`,
      digest: outcome.digest, columns: channels?.columns ?? [], sample: channels?.sample ?? [], masked_values: 0,
    });
    return undefined;
  }

  /** `path`: the normalized request target, the one forwarded. */
  #command(session: KubeSession, req: KubeRequest, path: string, info: RequestInfo, read: ReadBody | undefined): Command {
    const { recording, maxBodyBytes } = this.#options.target;
    const { body, headers } = req;
    const attributes = requestAttributes(info);
    const parameters: string[] = [];
    if (body === undefined) attributes.body_bytes = `>${maxBodyBytes}`;
    else if (body.length > 0 && read !== undefined) {
      attributes.body_bytes = String(body.length);
      attributes.body_digest = sha256(body);
      parameters.push(bodySample(read, info, recording));
    }
    if (headers['content-type'] !== undefined && body !== undefined && body.length > 0) attributes.content_type = headers['content-type'];
    // Policy refuses what it cannot know unless a rule names it (services/policy/src/engine.ts).
    if (read?.kind === 'opaque' && !read.searchable) attributes.body = K8S_UNREADABLE_BODY;
    if (impersonates(headers)) attributes.impersonate = 'refused';
    const dryRun = dryRunOf(req.method, parseTarget(path), info, body, read);
    if (dryRun !== undefined) attributes.dry_run = dryRun;
    const privilege = privilegeFacts(info, headers, read, body);
    if (privilege.length > 0) attributes.privilege = privilege.join(',');
    // A token in a query string (`?token=`) must never reach the bus.
    return session.command(maskedRequestText(requestText(req.method, path), (t) => recording.audit.maskText(t)), parameters, attributes, headers.traceparent);
  }

  /** Publishes the command (write-ahead) and waits for its verdict; fails closed. */
  async #decide(session: KubeSession, command: Command, info: RequestInfo, headers: IncomingHttpHeaders): Promise<Decision> {
    const { bus, verdictTimeoutMs, target, log } = this.#options;
    const unrecorded: Decision = { kind: 'refuse', code: ErrorCode.BUS_UNAVAILABLE, status: failure('ServiceUnavailable', 'Agate refused the request: the audit log is unavailable, so it cannot be recorded', info) };
    const recorded = () => session.events.emit(command).then(() => true, (err: unknown) => {
      log.error('cannot record a command; refusing it', { command_id: command.event_id, error: describeError(err) });
      session.events.recordUnrecordable(command, verdictTimeoutMs);
      return false;
    });
    if (impersonates(headers)) {
      // Impersonation would act as someone else with Agate's credential: refused before policy,
      // by a built-in rule, so the record shows the refusal and no verdict of policy's.
      const reason = 'impersonation headers (kubectl --as) are not allowed through Agate: Impersonate-*, or a front proxy\'s X-Remote-*';
      const message = `Agate refused the request: ${reason}`;
      const verdict = decideHere(command, 'deny', IMPERSONATION_RULE, reason);
      if (!(await recorded())) return unrecorded;
      void session.events.emitLogged(verdict); // nothing runs: it may wait for the bus like a response
      return { kind: 'refuse', code: 'IMPERSONATION_REFUSED', status: failure('Forbidden', message, info) };
    }
    if (target.allowDiscovery && info.kind === 'non-resource' && info.verb === 'get' && DISCOVERY.test(info.path)) {
      const verdict = decideHere(command, 'allow', DISCOVERY_RULE, 'API discovery is allowed by the built-in rule (targets[].allow_discovery)');
      // Published like a command that asks policy (bus.requestVerdict), not behind the session's
      // queue: there it waited for the previous request's Response and then its own Verdict, each
      // a lazy write (local-log.ts), which made discovery the slowest request (BENCHMARKS.md).
      try {
        if (bus.decideInline !== undefined) {
          // The embedded bus: appends of one turn share one group commit and land or fail
          // together, so the verdict is durable before the request goes on, at no extra write.
          await Promise.all([bus.publish(command), bus.publish(verdict)]);
        } else {
          // Kafka: each publish may be its own send, and a verdict sent after its command's send
          // failed would leave an allow in the record for a request that was refused.
          await bus.publish(command);
          void session.events.emitLogged(verdict);
        }
      } catch (err) {
        log.error('cannot record a command; refusing it', { command_id: command.event_id, error: describeError(err) });
        session.events.recordUnrecordable(command, verdictTimeoutMs);
        return unrecorded;
      }
      return { kind: 'run', client: undefined };
    }
    const d = await decide(command, { bus, verdictTimeoutMs, events: session.events, log }, {
      // kubectl has no channel for a notice: the request simply waits (see README).
      onHold: (v) => log.info('request held for approval', { command_id: command.event_id, approval_id: v.approval_id }),
    });
    switch (d.kind) {
      case 'unrecorded':
        return unrecorded;
      case 'deadline':
        return { kind: 'refuse', code: ErrorCode.VERDICT_TIMEOUT, status: forbidden(info, DEADLINE_RULE, d.reason) };
      case 'denied':
        return { kind: 'refuse', code: 'POLICY_DENIED', status: forbidden(info, d.verdict.rule_id, d.verdict.reason) };
      case 'run': {
        const mask = clientMasker(d, target.maskers, target.maskClient);
        if (mask.ok) return { kind: 'run', client: mask.masker };
        return { kind: 'refuse', code: ErrorCode.MASKING_FAILED, status: failure('Forbidden', `Agate refused the request: mask set "${mask.missing}" is not configured, so the response cannot be masked`, info) };
      }
    }
  }

  /**
   * Records the refusal and hands back its Status. `unasked`: refused before policy, so the
   * command itself is recorded here, with the deny of the built-in rule as its only verdict.
   */
  #refuse(session: KubeSession, command: Command, info: RequestInfo, status: Status, code: string, unasked: boolean): Plan & { kind: 'refuse' } {
    // Nothing runs, so the command may wait for the bus like a response; the session's queue
    // keeps the order: command, verdict, refusal.
    if (unasked) {
      const verdict = decideHere(command, 'deny', UNASKED_RULE, status.message); // marks the command: before it is published
      void session.events.emitLogged(command);
      void session.events.emitLogged(verdict);
    }
    void session.events.emitLogged(refusedEvent(command, 'refused', code, status.message));
    return { kind: 'refuse', status, info };
  }

  /**
   * A target the API server itself would not interpret (bad percent-encoding, a verb prefix with
   * nothing after it): never forwarded nor put to policy, and still recorded as refused, since an
   * agent trying spellings is what an auditor wants to see. The client gets a JSON Status, as the
   * API server would answer.
   */
  #refuseUnreadable(session: KubeSession, req: KubeRequest, url: URL, message: string): Plan & { kind: 'refuse' } {
    const recorded: RequestInfo = { kind: 'non-resource', verb: req.method.toLowerCase(), path: url.pathname };
    const command = this.#command(session, req, normalizedTarget(url), recorded, undefined);
    command.attributes.invalid_request = 'path';
    const status = failure('BadRequest', message);
    this.#refuse(session, command, recorded, status, ErrorCode.PROTOCOL_VIOLATION, true);
    return { kind: 'refuse', status, info: undefined };
  }

  /** Agate's own credential could not be produced (an exec plugin failed): refused, recorded, never retried with another. */
  #credentialFailed(session: KubeSession, command: Command, info: RequestInfo, err: unknown): Status {
    this.#options.log.error('cannot produce the cluster credential', { error: describeError(err) });
    const message = `Agate cannot authenticate to the API server of target "${this.#options.target.name}": its credential plugin failed`;
    void session.events.emitLogged(refusedEvent(command, 'error', ErrorCode.UPSTREAM_AUTH_FAILED, message));
    return failure('ServiceUnavailable', message, info, 502);
  }

  /**
   * How a self-review's answer is rewritten for the agent (see access-review.ts). The question of
   * an access review is read from the API server's answer, which repeats it as the API server
   * decoded it (kubectl asks in protobuf).
   */
  #review(session: KubeSession, info: RequestInfo, headers: IncomingHttpHeaders): ((doc: unknown) => Promise<void>) | undefined {
    const kind = reviewKind(info);
    if (kind === 'self') return async (doc) => selfReview(doc, session.identity);
    if (kind === 'rules') return async (doc) => rulesReview(doc);
    if (kind !== 'access') return undefined;
    return async (doc) => {
      const q = accessQuestion(doc);
      const answer: PolicyAnswer = q === undefined ? { kind: 'unknown', reason: 'the question could not be read' } : await this.#askPolicy(session, q, headers);
      combineAccess(doc, answer);
    };
  }

  /**
   * Policy's verdict on a request the agent only asks about: recorded as a Command marked
   * `access_review` (never run; a hold creates no approval), decided like the request itself.
   */
  async #askPolicy(session: KubeSession, q: Question, headers: IncomingHttpHeaders): Promise<PolicyAnswer> {
    const { bus, verdictTimeoutMs, log, target } = this.#options;
    const text = target.recording.audit.maskText(q.text).text; // names in it are the agent's words
    const command = session.command(text, [], questionAttributes(q, privilegeFacts(q.info, {}, undefined, undefined)), headers.traceparent);
    try {
      // The policy service answers a question's hold without an expiry: the hold is the answer.
      const outcome = await bus.requestVerdict(command, verdictTimeoutMs);
      if (outcome.kind === 'timeout') {
        session.events.recordRefusal(command, outcome.published, verdictTimeoutMs); // the question stays in the record
        return { kind: 'unknown', reason: `policy gave no answer within ${verdictTimeoutMs} ms` };
      }
      const v = outcome.verdict;
      if (v.decision === 'allow' || v.decision === 'mask') return { kind: 'allow', reason: v.reason };
      return { kind: v.decision, rule: v.rule_id, reason: v.reason };
    } catch (err) {
      log.warn('cannot ask policy about an access review', { error: describeError(err), user_agent: String(headers['user-agent'] ?? '').slice(0, 80) });
      return { kind: 'unknown', reason: 'the question could not be recorded' };
    }
  }
}

/**
 * A resource request by a method with no RBAC verb (OPTIONS, TRACE, PROPFIND, …): no rule can
 * name it and the API server serves none, so it is refused (fail closed) rather than left to
 * the policy default.
 */
function noVerb(method: string, info: RequestInfo): Status {
  return failure('MethodNotAllowed', `Agate refused the request: the method ${method.slice(0, 20)} has no Kubernetes verb`, info);
}

function badQuery(why: string, info: RequestInfo): Status {
  return failure('BadRequest', `Agate refused the request: ${why}`, info);
}

/** Reads over an upgraded connection: the API server answers them and reads nothing more from the client. */
const READ_VERBS = new Set(['get', 'list', 'watch']);
/** Subresources read over an upgraded connection the same way (a log followed over a WebSocket). */
const READ_SUBRESOURCES = new Set(['', 'log']);

/**
 * Whether what the client sends after an upgrade reaches a process or a port: exec or attach
 * with stdin, a port-forward, a proxy (a pod's, a service's, a node's), anything else upgraded.
 * Agate relays those bytes unread (upgrade.ts), so what they make the pod run is not in the
 * record. Only an exec or attach without stdin (its command, in the path, is all that runs) and
 * a read of a resource or its log are not. `stdin` counts as the API server's query decoding reads it (any
 * value but `0` or `false`, `Convert_Slice_string_To_bool`), from any of its values, in any case.
 */
function carriesInput(info: RequestInfo, url: URL): boolean {
  if (info.kind !== 'resource') return true;
  if (info.subresource === 'exec' || info.subresource === 'attach') {
    for (const [k, v] of url.searchParams) if (k.toLowerCase() === 'stdin' && v !== '0' && v.toLowerCase() !== 'false') return true;
    return false;
  }
  return !(READ_SUBRESOURCES.has(info.subresource) && READ_VERBS.has(info.verb));
}

/**
 * The subprotocols, of those the client offers, Agate reads on an exec or attach over WebSocket
 * (channels.ts); undefined when it reads none of them (SPDY, base64 only, a port-forward or a
 * proxy): such a stream is relayed as bytes.
 */
function readableStream(info: RequestInfo, headers: KubeRequest['headers']): string[] | undefined {
  if (info.kind !== 'resource' || (info.subresource !== 'exec' && info.subresource !== 'attach')) return undefined;
  if (String(headers.upgrade ?? '').trim().toLowerCase() !== 'websocket') return undefined;
  const offered = String(headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const read = offered.filter((p): p is string => (CHANNEL_PROTOCOLS as readonly string[]).includes(p));
  return read.length === 0 ? undefined : [...new Set(read)];
}

function declaresBody(headers: KubeRequest['headers']): boolean {
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
}

/** What the client is told when the API server cannot be reached: names the cause, never the credential. */
function upstreamFailure(err: Error, target: string): string {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/.test(code)) {
    return `Agate refused the API server of target "${target}": its TLS certificate does not verify against the kubeconfig's certificate authority (${code})`;
  }
  return `Agate cannot reach the API server of target "${target}" (${code || err.message})`;
}
