import { randomUUID } from 'node:crypto';
import { holdNotice } from '../hold-notice.js';
import { decide, refusalText } from '../decide.js';
import { SessionEvents } from '../session-events.js';
import type {
  AcceptConnection, AuthContext, AuthenticationType, Client, ClientChannel, ClientInfo, Connection, ExecOptions, GetStreamCallback, PseudoTtyInfo,
  RejectConnection, ServerChannel, Session, ShellOptions, TcpConnectionDetails, TcpipBindInfo,
} from 'ssh2';
import type { Bus } from '../../../../core/src/bus/bus.js';
import { withLease } from '../../../../core/src/bus/leases.js';
import { AgateError, AuthenticationError, ErrorCode, describeError } from '../../../../core/src/errors.js';
import { TokenVerifier } from '../../../../core/src/identity/oidc.js';
import { abandonedMessage, type Abandoned, type LoginGuard, type PendingLogin } from '../../../../core/src/logins/pending.js';
import { sourceAddress } from '../../../../core/src/logins/throttle.js';
import type { Logger } from '../../../../core/src/log.js';
import { nowMicros, type Command, type Identity, type Verdict } from '../../../../schemas/src/events.js';
import type { Masker } from '../masking/masker.js';
import { AgentRelay, meterAgentChannel, openAgentChannel } from './agent-relay.js';
import { CastRecorder } from './asciicast.js';
import type { AuthorizedKeys } from './authorized-keys.js';
import { fingerprint } from './host-key.js';
import { relayExec } from './exec-relay.js';
import { streamRecorder } from './exec-recorders.js';
import { gitInvocation } from './git/invocation.js';
import { pushCommand } from './git/push-command.js';
import { PushGate, type PushVerdict, type RefUpdate } from './git/push-gate.js';
import { targetAncestry } from './git/target-ancestry.js';
import { MAX_REMOTE_FORWARDS, RemoteForwards } from './remote-forwards.js';
import { castResponse, execResponse, failureResponse, fileResponse, forwardResponse, grantedResponse } from './responses.js';
import type { TypedLine } from './line-tracker.js';
import { relayShell, type LineDecision } from './shell-relay.js';
import { ShellCapture } from './capture/shell-capture.js';
import type { CommandReport } from './capture/reports.js';
import { relaySftp, type FileRequest, type FileResult } from './sftp/relay.js';
import { connectUpstream, type SshUpstreamTarget } from './upstream.js';

export interface SshSessionDeps {
  bus: Bus;
  verifier: TokenVerifier;
  /** Target name (the SSH user name the client logs in as) → upstream, credential resolved. */
  resolveTarget: (name: string) => SshUpstreamTarget | undefined;
  proxyId: string;
  verdictTimeoutMs: number;
  /** Deadline for the upstream handshake. */
  connectTimeoutMs: number;
  logger: Logger;
  /** Applied to every command line before it is recorded. */
  audit: Masker;
  /** The listener's connections still logging in (their deadline), and the failed-login throttle. */
  logins: LoginGuard;
  /** Session channels open at once per connection (default 16). */
  maxChannels?: number;
  /** Public keys registered to identities; without any, only tokens log in. */
  authorizedKeys?: AuthorizedKeys;
}

/** Refusals reach the client as stderr and this exit status (the shell's "cannot execute"). */
export const REFUSED_EXIT_STATUS = 126;
const MAX_AUTH_FAILURES = 3;
/** Session channels open at once per connection; each may hold a pending verdict. */
export const MAX_CHANNELS = 16;
const AUTH_METHODS = ['password', 'keyboard-interactive'] as const;
/** OpenSSH reads a password or prompt answer into a 1024-byte buffer: longer input is cut here. */
export const OPENSSH_PASSWORD_MAX = 1023;
/** Continuation prompts for one keyboard-interactive login (8 KiB of token). */
const MAX_TOKEN_PARTS = 8;
/** How often a shell's recording so far is published. */
const RECORDING_TICK_MS = 2000;
/** Recording chunks publishing at once before the shell's output is paused. */
const MAX_RECORDING_BACKLOG = 4;


/** ssh2 runs agent forwarding with these (its types omit the option). */
type AgentForward = { agentForward?: boolean };

/** `rule`: the rule that allowed it; null when the policy default did. */
type Decision = { kind: 'run'; rule: string | null } | { kind: 'refuse'; message: string };

/**
 * One client connection through the SSH proxy. The client logs in with its OIDC token as the
 * password, naming the target as the user name. Each `exec` is recorded as a Command, decided by
 * policy, and only then run on the target over Agate's own connection; its output and exit
 * status go back to the client and are recorded as a Response. Shells (relayed on the client's
 * pty, recorded as asciicast; on a pty, bash with Agate's capture hook reports each command it
 * runs, decided exactly; other typed lines decided as rebuilt), sftp (each file operation decided), `-L`
 * tunnels, `-R` listeners and agent forwarding (`-A`) are decided the same way, forwarding only
 * by an explicit rule; X11, unix-socket forwards and other subsystems are refused.
 */
export class SshSession {
  readonly id = randomUUID();
  readonly #conn: Connection;
  readonly #deps: SshSessionDeps;
  readonly #log: Logger;
  readonly #clientAddress: string;
  readonly #sourceAddress: string;
  #identity: Identity | undefined;
  #target: SshUpstreamTarget | undefined;
  #targetName = '';
  #upstream: Promise<Client> | undefined;
  readonly #remoteForwards = new RemoteForwards();
  /** The first allowed agent-forwarding request; each agent channel the target opens refers to it. */
  #agentRequest: Command | undefined;
  #authFailures = 0;
  #channels = 0;
  /** Pending until ssh2 reports the login complete ('ready'); its deadline is the listener's. */
  readonly #pending: PendingLogin;
  #opened = false;
  #closed = false;
  #closeReason = 'client disconnected';
  #sequence = 0;
  readonly #events: SessionEvents;
  readonly #startedAt = nowMicros();
  #done!: () => void;
  readonly finished = new Promise<void>((r) => (this.#done = r));

  constructor(conn: Connection, info: ClientInfo, deps: SshSessionDeps, login: PendingLogin) {
    this.#conn = conn;
    this.#deps = deps;
    this.#log = deps.logger.child({ session_id: this.id, component: 'ssh-proxy' });
    this.#events = new SessionEvents(deps.bus, this.#log);
    this.#clientAddress = `${info.ip}:${info.port}`;
    this.#sourceAddress = sourceAddress(info.ip);
    conn.on('authentication', (ctx) => void this.#onAuthentication(ctx));
    this.#pending = login;
    login.onAbandon = (why) => void this.#abandonLogin(why);
    conn.on('ready', () => login.done());
    conn.on('session', (accept, reject) => {
      if (this.#channels >= (deps.maxChannels ?? MAX_CHANNELS)) return void reject();
      this.#channels += 1;
      const session = accept();
      session.once('close', () => (this.#channels -= 1));
      this.#onSession(session);
    });
    // Forwarding lets traffic past the command audit: -L and -R need a rule that allows them by
    // name; unix-socket forwards are refused.
    conn.on('tcpip', (accept, reject, info) => void this.#directTcpip(accept, reject, info));
    conn.on('openssh.streamlocal', (_accept, reject) => reject());
    conn.on('request', (accept, reject, name, info) => {
      if (this.#identity === undefined) return void reject?.();
      if (name === 'tcpip-forward') return void this.#remoteForward(accept, reject, info);
      if (name === 'cancel-tcpip-forward') return void this.#cancelRemoteForward(accept, reject, info);
      reject?.();
    });
    conn.on('error', (err) => this.#log.debug('client connection error', { error: err.message }));
    conn.on('close', () => void this.#end());
  }

  /** No channel open: no command, shell, transfer or tunnel in progress (a drain closes idle sessions first). */
  get idle(): boolean {
    return this.#channels === 0;
  }

  /** Ends the session from the proxy's side (shutdown). */
  terminate(reason: string): void {
    this.#closeReason = reason;
    this.#conn.end();
  }

  // ---- authentication ------------------------------------------------------------------------

  async #onAuthentication(ctx: AuthContext): Promise<void> {
    if (ctx.method === 'password') return this.#login(ctx, ctx.password);
    if (ctx.method === 'keyboard-interactive') return this.#promptToken(ctx, '', 1);
    if (ctx.method === 'publickey' && this.#keys !== undefined) return this.#keyLogin(ctx, this.#keys);
    ctx.reject(this.#methods());
  }

  /** The login methods offered: tokens always, public keys when some are registered. */
  #methods(): AuthenticationType[] {
    return this.#keys === undefined ? [...AUTH_METHODS] : [...AUTH_METHODS, 'publickey'];
  }

  get #keys(): AuthorizedKeys | undefined {
    const keys = this.#deps.authorizedKeys;
    return keys === undefined || keys.size === 0 ? undefined : keys;
  }

  /**
   * publickey: a registered key logs in as the identity the config gives it. The client first
   * asks whether a key would do (no signature), then proves it holds the private key.
   */
  async #keyLogin(ctx: AuthContext & { method: 'publickey' }, keys: AuthorizedKeys): Promise<void> {
    this.#targetName = ctx.username;
    const identity = keys.identityOf(ctx.key.algo, ctx.key.data);
    if (identity === undefined) {
      // Clients offer every key they hold in turn: a refusal is recorded but not counted as a failure.
      return this.#refuseLogin(ctx, '', ErrorCode.AUTH_KEY_UNKNOWN, `the public key ${fingerprint(ctx.key.data)} is not registered to any identity`, false);
    }
    if (ctx.signature === undefined || ctx.blob === undefined) return ctx.accept();
    if (!keys.verify(ctx.key.algo, ctx.key.data, ctx.blob, ctx.signature, ctx.hashAlgo)) {
      return this.#refuseLogin(ctx, '', ErrorCode.AUTH_KEY_SIGNATURE_INVALID, `the signature made with ${fingerprint(ctx.key.data)} does not verify`);
    }
    await this.#open(ctx, identity, '');
  }

  /**
   * keyboard-interactive: the token, in as many answers as the client needs. OpenSSH sends at
   * most 1023 characters per answer, so an answer of that length is followed by a prompt for
   * the rest (an askpass program can answer each part; see the README).
   */
  #promptToken(ctx: AuthContext & { method: 'keyboard-interactive' }, sofar: string, part: number): void {
    const prompt = part === 1 ? 'OIDC token (password): ' : `OIDC token, continued (part ${part}): `;
    const instructions = part === 1 ? 'Log in with your OIDC token' : `The answer filled the ssh client's ${OPENSSH_PASSWORD_MAX}-character limit; type the rest of the token`;
    ctx.prompt([{ prompt, echo: false }], 'Agate', instructions, (answers) => {
      const answer = Array.isArray(answers) ? (answers[0] ?? '') : '';
      if (answer.length >= OPENSSH_PASSWORD_MAX && part < MAX_TOKEN_PARTS) return this.#promptToken(ctx, sofar + answer, part + 1);
      void this.#login(ctx, sofar + answer);
    });
  }

  async #login(ctx: AuthContext, token: string): Promise<void> {
    this.#targetName = ctx.username;
    let identity: Identity;
    try {
      identity = await this.#deps.verifier.verify(token);
    } catch (err) {
      const e = err instanceof AuthenticationError ? err : new AuthenticationError(ErrorCode.AUTH_TOKEN_MALFORMED, 'the token could not be verified', { cause: err });
      // A password of exactly the client's limit was almost certainly cut short.
      const cut = ctx.method === 'password' && token.length === OPENSSH_PASSWORD_MAX
        ? `; the token is ${OPENSSH_PASSWORD_MAX} characters, the most the OpenSSH client sends as a password, so it was probably cut: log in with keyboard-interactive (it asks for the rest) or use a shorter token`
        : '';
      return this.#refuseLogin(ctx, token, e.code, e.message + cut);
    }
    await this.#open(ctx, identity, token);
  }

  /** A verified identity opens the session on the target it named as its user name. */
  async #open(ctx: AuthContext, identity: Identity, token: string): Promise<void> {
    const target = this.#deps.resolveTarget(ctx.username);
    if (target === undefined) return this.#refuseLogin(ctx, token, ErrorCode.TARGET_UNKNOWN, `no ssh target named "${ctx.username}"`);
    try {
      await this.#events.emit({
        type: 'SessionOpened', event_id: randomUUID(), time: nowMicros(), session_id: this.id, proxy_id: this.#deps.proxyId,
        protocol: 'ssh', target: target.name, client_address: this.#clientAddress, identity, attributes: withLease({ upstream_user: target.user }, this.#deps.bus),
      });
    } catch (err) {
      this.#log.error('cannot record session start; refusing the session', { error: describeError(err) });
      ctx.reject([], false);
      return void this.#conn.end();
    }
    this.#opened = true;
    this.#identity = identity;
    this.#target = target;
    // The relay answers the agent channels the target opens once a channel forwards the agent.
    this.#upstream = connectUpstream(target, this.#deps.connectTimeoutMs, new AgentRelay((cb) => void this.#agentChannel(cb)));
    this.#upstream.then(
      (client) => {
        client.on('close', () => this.terminate('the target closed the connection'));
        client.on('tcp connection', (details, accept, reject) => void this.#forwardedConnection(details, accept, reject));
      },
      (err: unknown) => this.#log.warn('cannot open the upstream connection', { target: target.name, error: describeError(err) }),
    );
    ctx.accept();
  }

  /** The listener closes the connection before it logged in (deadline, or room for another). */
  async #abandonLogin(why: Abandoned): Promise<void> {
    const message = abandonedMessage(why, this.#deps.logins.pending.options);
    this.#deps.logins.throttle.failed(this.#sourceAddress);
    this.terminate(why === 'timeout' ? 'login timeout' : 'login evicted');
    await this.#events.emitLogged({
      type: 'AuthenticationFailed', event_id: randomUUID(), time: nowMicros(), session_id: this.id, proxy_id: this.#deps.proxyId,
      protocol: 'ssh', target: this.#targetName, client_address: this.#clientAddress,
      reason_code: why === 'timeout' ? ErrorCode.AUTH_TIMEOUT : ErrorCode.AUTH_EVICTED, message, claimed_issuer: null, claimed_subject: null,
    });
  }

  async #refuseLogin(ctx: AuthContext, token: string, code: string, message: string, counts = true): Promise<void> {
    // Offering a key that is not registered is how clients probe; only real failures count.
    if (counts) this.#deps.logins.throttle.failed(this.#sourceAddress);
    const claimed = TokenVerifier.peek(token);
    this.#log.info('login refused', { target: this.#targetName, reason_code: code, message });
    await this.#events.emitLogged({
      type: 'AuthenticationFailed', event_id: randomUUID(), time: nowMicros(), session_id: this.id, proxy_id: this.#deps.proxyId,
      protocol: 'ssh', target: this.#targetName, client_address: this.#clientAddress, reason_code: code, message,
      claimed_issuer: claimed.issuer, claimed_subject: claimed.subject,
    });
    if (counts) this.#authFailures += 1;
    ctx.reject(this.#methods());
    if (this.#authFailures >= MAX_AUTH_FAILURES) this.#conn.end();
  }

  // ---- channel requests ----------------------------------------------------------------------

  #onSession(session: Session): void {
    // The pty the client asked for; the same is requested on the target for the shell or exec.
    let pty: PseudoTtyInfo | undefined;
    let live: { upstream: ClientChannel; recorder?: CastRecorder } | undefined;
    session.on('pty', (accept, _reject, info) => {
      pty = info;
      accept?.();
    });
    session.on('window-change', (accept, _reject, info) => {
      if (pty !== undefined) Object.assign(pty, { cols: info.cols, rows: info.rows, width: info.width, height: info.height });
      live?.upstream.setWindow(info.rows, info.cols, info.height, info.width);
      live?.recorder?.resize(info.cols, info.rows);
      accept?.();
    });
    session.on('signal', (accept, _reject, info) => {
      live?.upstream.signal(info.name);
      accept?.();
    });
    session.on('x11', (_accept, reject) => reject?.());
    // Whether this channel's exec or shell forwards the client's agent (the request comes first).
    let agent: Promise<boolean> | undefined;
    session.on('auth-agent', (accept, reject) => void (agent = this.#agentForwarding(accept, reject)));
    session.on('env', (_accept, reject) => reject?.());
    session.on('exec', (accept, _reject, info) => void this.#exec(accept, info.command, pty, (c) => (live = { upstream: c }), agent));
    session.on('shell', (accept) => void this.#shell(accept, pty, (l) => (live = l), agent));
    // With no 'sftp' listener, ssh2 hands sftp (and so modern scp) to 'subsystem' too.
    session.on('subsystem', (accept, _reject, info) => {
      if (info.name === 'sftp') return void this.#sftp(accept);
      void this.#refuseChannel(accept, `(subsystem ${info.name})`, { request: 'subsystem', subsystem: info.name }, `the ${info.name} subsystem is not available through Agate`);
    });
  }

  /** The upstream connection, or the refusal the client gets when there is none. */
  async #upstreamOr(channel: ServerChannel, command: Command): Promise<Client | undefined> {
    try {
      return await this.#upstream!;
    } catch (err) {
      const code = err instanceof AgateError ? err.code : ErrorCode.UPSTREAM_UNREACHABLE;
      const message = err instanceof AgateError ? err.message : `cannot reach target "${this.#targetName}"`;
      this.#refuse(channel, command, 'error', message, code, 255);
      return undefined;
    }
  }

  /**
   * An interactive shell: decided as the command `shell` (attributes request=shell, the pty's
   * term and size); when allowed, relayed with its pty, recorded as an asciicast v2 stream in
   * Response events (`command_tag` "asciicast v2 part N", one event per sample row). On a pty,
   * bash runs with the capture hook (capture/hook-script.ts) where the target has it, and each
   * command it is about to run is an exact `shell-line` command, decided before it runs; a line
   * typed where no hook reports (another program has the terminal, no bash here, no pty) is
   * recorded and decided as a best-effort `shell-line` command.
   */
  async #shell(accept: () => ServerChannel | undefined, pty: PseudoTtyInfo | undefined, onLive: (l: { upstream: ClientChannel; recorder: CastRecorder }) => void, agent?: Promise<boolean>): Promise<void> {
    const channel = accept();
    if (channel === undefined) return;
    channel.pause();
    const attributes: Record<string, string> = { request: 'shell', kind: 'shell', pty: String(pty !== undefined) };
    if (pty !== undefined) Object.assign(attributes, { term: pty.term, cols: String(pty.cols), rows: String(pty.rows) });
    const command = this.#command('shell', attributes);
    const decision = await this.#decide(command);
    if (decision.kind === 'refuse') return this.#refuse(channel, command, 'refused', decision.message);
    const upstream = await this.#upstreamOr(channel, command);
    if (upstream === undefined) return;
    const agentForward = (await agent) === true;
    const started = nowMicros();
    let backlog = 0;
    const recorder = new CastRecorder({
      masker: this.#deps.audit,
      flush: (chunk) => {
        backlog += 1;
        void this.#events.emitLogged(castResponse(command, chunk)).then(() => (backlog -= 1));
      },
    });
    const relay = (stream: ClientChannel, capture?: { capture: ShellCapture; initial: Buffer }) => {
      onLive({ upstream: stream, recorder });
      // A quiet shell's recording is published every few seconds, not only per 32 KiB.
      const ticker = setInterval(() => recorder.tick(), RECORDING_TICK_MS);
      void relayShell(channel, stream, {
        recorder,
        capture,
        onLine: (line) => this.#typedLine(command, line, (note) => channel.write(`\r\n${note}\r\n`)),
        recordingBacklog: () => (backlog > MAX_RECORDING_BACKLOG ? this.#events.drained() : undefined),
      }).then((outcome) => {
        clearInterval(ticker);
        return this.#events.emitLogged(execResponse(command, outcome, started));
      });
    };
    if (pty !== undefined) {
      // On a pty, bash runs with Agate's capture hook when the target has it; otherwise a plain shell.
      const say = (text: string) => {
        const b = Buffer.from(`\r\n${text}\r\n`);
        recorder.output(b);
        channel.write(b);
      };
      const window = { term: pty.term, cols: pty.cols, rows: pty.rows, width: pty.width, height: pty.height, modes: pty.modes };
      const captured = await ShellCapture.start(upstream, window, agentForward, {
        decide: (report) => this.#capturedCommand(command, report, say),
        unreadable: (report) => {
          const message = `Agate refused the command: ${report.reason}, so it cannot be recorded and decided`;
          this.#recordRefusal('(unreadable captured command)', { request: 'shell-line', exact: 'false', captured: 'bash', pid: String(report.pid), shell_command_id: command.event_id }, message);
          say(message);
        },
        startTimeoutMs: this.#deps.connectTimeoutMs,
      });
      if (channel.destroyed) return captured?.capture.close();
      if (captured !== undefined) return relay(captured.stream, { capture: captured.capture, initial: captured.initial });
      this.#log.info('the target cannot run the shell capture hook; typed lines are decided as rebuilt from keystrokes', { target: this.#targetName });
    }
    const options: ShellOptions & AgentForward = agentForward ? { agentForward: true } : {};
    const window = pty === undefined ? false : { term: pty.term, cols: pty.cols, rows: pty.rows, width: pty.width, height: pty.height, modes: pty.modes };
    upstream.shell(window as false, options, (err, stream) => {
      if (err) return void this.#refuse(channel, command, 'error', `the target could not start a shell: ${err.message}`, ErrorCode.UPSTREAM_UNREACHABLE, 255);
      relay(stream);
    });
  }

  /**
   * A command the captured shell is about to run, reported by its hook: recorded as an exact
   * `shell-line` (attributes exact=true, captured=bash, pid) and decided; the hook runs it only
   * when this resolves true. Never rejects: a failure to decide is a refusal.
   */
  async #capturedCommand(shell: Command, report: CommandReport, say: (text: string) => void): Promise<boolean> {
    try {
      const command = this.#command(report.text, { request: 'shell-line', exact: 'true', captured: 'bash', pid: String(report.pid), shell_command_id: shell.event_id });
      const decision = await this.#decide(command, say);
      if (decision.kind === 'refuse') {
        void this.#events.emitLogged(failureResponse(command, 'refused', null, decision.message));
        say(decision.message);
        return false;
      }
      void this.#events.emitLogged({ ...failureResponse(command, 'refused', null, null), status: 'ok', command_tag: 'captured command allowed' });
      return true;
    } catch (err) {
      this.#log.error('cannot decide a captured shell command; refusing it', { error: describeError(err) });
      return false;
    }
  }

  /** A line typed into a shell: recorded and decided before its Enter reaches the target. */
  async #typedLine(shell: Command, line: TypedLine, note: (text: string) => void): Promise<LineDecision> {
    // Rebuilt from keystrokes, so never exact; policy refuses such lines where shell rules apply.
    const command = this.#command(line.text, { request: 'shell-line', best_effort: 'true', exact: 'false', edited: String(line.edited), shell_command_id: shell.event_id });
    const decision = await this.#decide(command, note);
    if (decision.kind === 'refuse') {
      void this.#events.emitLogged(failureResponse(command, 'refused', null, decision.message));
      return { run: false, message: decision.message };
    }
    void this.#events.emitLogged({ ...failureResponse(command, 'refused', null, null), status: 'ok', command_tag: 'typed line forwarded' });
    return { run: true };
  }


  async #exec(accept: () => ServerChannel | undefined, clientText: string, pty: PseudoTtyInfo | undefined, onLive: (c: ClientChannel) => void, agent?: Promise<boolean>): Promise<void> {
    // Accepted at once: ssh2 drops a deferred accept when the client's stdin EOF arrives first.
    // Paused, so no stdin is read (and no window granted) while the verdict is pending.
    const channel = accept();
    if (channel === undefined) return;
    channel.pause();
    // git's services are run (and decided) in one canonical spelling, whatever the client sent.
    const git = gitInvocation(clientText);
    const text = git?.kind === 'git' ? git.canonical : clientText;
    const attributes: Record<string, string> = pty === undefined ? { request: 'exec' } : { request: 'exec', pty: 'true', term: pty.term };
    if (text !== clientText) attributes.client_text = this.#deps.audit.maskText(clientText).text;
    const command = this.#command(text, attributes);
    if (git?.kind === 'unclear') {
      await this.#events.emitLogged(command);
      return this.#refuse(channel, command, 'refused', `Agate refused the command: ${git.reason}, so the refs it would update cannot be read`);
    }
    const decision = await this.#decide(command, (note) => channel.stderr.write(`${note}\n`));
    if (decision.kind === 'refuse') return this.#refuse(channel, command, 'refused', decision.message);
    const upstream = await this.#upstreamOr(channel, command);
    if (upstream === undefined) return;
    const options: ExecOptions & AgentForward = pty === undefined ? {} : { pty: { term: pty.term, cols: pty.cols, rows: pty.rows, width: pty.width, height: pty.height, modes: pty.modes } };
    if ((await agent) === true) options.agentForward = true;
    const started = nowMicros();
    upstream.exec(text, options, (err, stream) => {
      if (err) return void this.#refuse(channel, command, 'error', `the target could not run the command: ${err.message}`, ErrorCode.UPSTREAM_UNREACHABLE, 255);
      onLive(stream);
      const tapped = streamRecorder(text);
      const taps = { ...tapped?.taps };
      if (git?.kind === 'git' && git.service === 'receive-pack') {
        const note = (t: string) => channel.stderr.write(`${t}\n`);
        taps.gate = (to, reply) => new PushGate(to, {
          decide: (updates) => this.#push(command, git.repo, updates, note),
          unreadable: (reason) => this.#unreadablePush(command, git.repo, reason),
          ancestry: targetAncestry(upstream, git.repo),
          reply,
          notice: note,
        });
      }
      void relayExec(channel, stream, taps).then((outcome) => {
        const response = execResponse(command, outcome, started);
        if (tapped !== undefined) Object.assign(response, tapped.recorded());
        return this.#events.emitLogged(response);
      });
    });
  }

  /** A push's ref updates: recorded and decided as one `git-push` Command before any reach the target. */
  async #push(exec: Command, repo: string, updates: RefUpdate[], note: (text: string) => void): Promise<PushVerdict> {
    const { text, attributes } = pushCommand(repo, updates);
    const command = this.#command(text, { ...attributes, exec_command_id: exec.event_id });
    const decision = await this.#decide(command, note);
    if (decision.kind === 'refuse') {
      void this.#events.emitLogged(failureResponse(command, 'refused', null, decision.message));
      return { run: false, message: decision.message };
    }
    void this.#events.emitLogged(grantedResponse(command, 'push forwarded'));
    return { run: true };
  }

  /** A push whose commands Agate cannot read: recorded and refused without asking policy. */
  #unreadablePush(exec: Command, repo: string, reason: string): string {
    const message = `Agate refused the push: ${reason}`;
    this.#recordRefusal(`git push '${repo}' (unreadable)`, { request: 'git-push', git_repo: repo, exec_command_id: exec.event_id }, message);
    return message;
  }

  /**
   * sftp (and scp, which speaks sftp): the channel is decided as `(subsystem sftp)` (request
   * sftp), then each file operation is its own decided Command (`sftp write /path`) whose
   * Response carries the bytes moved and the file's digest. The channel's Response records the
   * bytes each way and a digest of what the target sent back.
   */
  async #sftp(accept: () => ServerChannel | undefined): Promise<void> {
    const channel = accept();
    if (channel === undefined) return;
    channel.pause();
    const command = this.#command('(subsystem sftp)', { request: 'sftp', subsystem: 'sftp' });
    const decision = await this.#decide(command);
    if (decision.kind === 'refuse') return this.#refuse(channel, command, 'refused', decision.message);
    const upstream = await this.#upstreamOr(channel, command);
    if (upstream === undefined) return;
    const started = nowMicros();
    upstream.subsys('sftp', (err, stream) => {
      if (err) return void this.#refuse(channel, command, 'error', `the target refused the sftp subsystem: ${err.message}`, ErrorCode.UPSTREAM_UNREACHABLE, 255);
      const hooks = {
        decide: (request: FileRequest) => this.#fileOperation(request),
        finished: (op: { command: Command; started: number }, result: FileResult) => void this.#events.emitLogged(fileResponse(op.command, op.started, result)),
      };
      void relaySftp(channel, stream, hooks).then((outcome) => {
        const response = execResponse(command, outcome, started);
        // The channel usually closes without an exit status; how much moved is what matters.
        response.command_tag = `sftp ${outcome.bytesUp} bytes up, ${outcome.bytes} bytes down`;
        if (outcome.error !== undefined) {
          Object.assign(response, { status: 'error', error_code: outcome.error.code, error_message: outcome.error.message });
        } else if (outcome.exitCode === null && outcome.signal === null && !outcome.clientGone) {
          response.status = 'ok';
          response.error_message = null;
        }
        return this.#events.emitLogged(response);
      });
    });
  }

  /** One sftp file operation: recorded and decided; a refusal carries the reason to the client. */
  async #fileOperation(request: FileRequest): Promise<{ token: { command: Command; started: number }; refusal?: string }> {
    const mask = (p: string) => this.#deps.audit.maskText(p).text;
    const attributes: Record<string, string> = { request: 'sftp', operation: request.operation, path: mask(request.path), sftp_request: request.request };
    if (request.targetPath !== undefined) attributes.target_path = mask(request.targetPath);
    const text = `sftp ${request.operation} ${request.path}${request.targetPath === undefined ? '' : ` ${request.targetPath}`}`;
    const command = this.#command(text, attributes);
    const decision = await this.#decide(command);
    const token = { command, started: nowMicros() };
    return decision.kind === 'refuse' ? { token, refusal: decision.message } : { token };
  }


  /**
   * `ssh -L`: a TCP connection from the target's side to host:port. Decided as the command
   * `direct-tcpip host:port` (attributes request=direct-tcpip, path=host:port), and allowed
   * only by a rule that names it: the policy default never opens a tunnel. The Response records
   * the bytes each way.
   */
  async #directTcpip(accept: () => ServerChannel, rejectChannel: () => void, info: { srcIP: string; srcPort: number; destIP: string; destPort: number }): Promise<void> {
    // Tunnels count against the same per-connection cap as sessions: each may hold a verdict.
    const release = this.#takeChannel();
    if (release === undefined) return rejectChannel();
    const reject = () => {
      release();
      rejectChannel();
    };
    const where = `${info.destIP}:${info.destPort}`;
    const command = this.#command(`direct-tcpip ${where}`, { request: 'direct-tcpip', path: where });
    const refusal = await this.#forwardingRefusal(command);
    if (refusal !== undefined) {
      void this.#events.emitLogged(failureResponse(command, 'refused', null, refusal));
      return reject();
    }
    let upstream: Client;
    try {
      upstream = await this.#upstream!;
    } catch (err) {
      void this.#events.emitLogged(failureResponse(command, 'error', ErrorCode.UPSTREAM_UNREACHABLE, describeError(err)));
      return reject();
    }
    const started = nowMicros();
    upstream.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (err, stream) => {
      if (err) {
        void this.#events.emitLogged(failureResponse(command, 'error', ErrorCode.UPSTREAM_UNREACHABLE, `the target could not open ${where}: ${err.message}`));
        return reject();
      }
      const channel = accept();
      channel.pause();
      channel.once('close', release);
      void relayExec(channel, stream, { exitStatus: false }).then((outcome) => this.#events.emitLogged(forwardResponse(command, outcome, started)));
    });
  }

  /**
   * `ssh -R`: the client asks the target to listen on bindAddr:bindPort and hand it each
   * connection made there. Decided as `tcpip-forward host:port` (attributes
   * request=tcpip-forward, path=host:port as asked) and, like -L, allowed only by a rule that
   * names it. Each connection made on the target is then decided and recorded in turn.
   */
  async #remoteForward(accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined, bind: TcpipBindInfo): Promise<void> {
    const where = `${bind.bindAddr}:${bind.bindPort}`;
    const attributes = { request: 'tcpip-forward', path: where };
    if (this.#remoteForwards.full) {
      this.#recordRefusal(`tcpip-forward ${where}`, attributes, `a connection may hold at most ${MAX_REMOTE_FORWARDS} remote forwards`);
      return reject?.();
    }
    const command = this.#command(`tcpip-forward ${where}`, attributes);
    const refusal = await this.#forwardingRefusal(command);
    if (refusal !== undefined) {
      void this.#events.emitLogged(failureResponse(command, 'refused', null, refusal));
      return reject?.();
    }
    let upstream: Client;
    try {
      upstream = await this.#upstream!;
      upstream.forwardIn(bind.bindAddr, bind.bindPort, (err, boundPort) => {
        if (err) {
          void this.#events.emitLogged(failureResponse(command, 'error', ErrorCode.UPSTREAM_UNREACHABLE, `the target could not listen on ${where}: ${err.message}`));
          return reject?.();
        }
        if (this.#closed) return unforward(upstream, bind.bindAddr, boundPort); // the client left meanwhile
        this.#remoteForwards.add({ bindAddr: bind.bindAddr, bindPort: bind.bindPort, boundPort, command });
        void this.#events.emitLogged(grantedResponse(command, `listening on ${bind.bindAddr}:${boundPort} on the target`));
        accept?.(boundPort);
      });
    } catch (err) {
      void this.#events.emitLogged(failureResponse(command, 'error', ErrorCode.UPSTREAM_UNREACHABLE, describeError(err)));
      reject?.();
    }
  }

  /**
   * `cancel-tcpip-forward`: the target stops listening. Recorded, not decided: it only takes
   * access away, and a refusal would leave the listener open.
   */
  async #cancelRemoteForward(accept: (() => void) | undefined, reject: (() => void) | undefined, bind: TcpipBindInfo): Promise<void> {
    const forward = this.#remoteForwards.take(bind.bindAddr, bind.bindPort);
    if (forward === undefined) return reject?.();
    const where = `${forward.bindAddr}:${forward.bindPort}`;
    const command = this.#command(`cancel-tcpip-forward ${where}`, { request: 'tcpip-forward', path: where, cancel: 'true', forward_command_id: forward.command.event_id });
    void this.#events.emitLogged(command);
    const upstream = await this.#upstream!; // resolved: the listener was bound through it
    const done = (err?: Error | null) => {
      if (err) void this.#events.emitLogged(failureResponse(command, 'error', ErrorCode.UPSTREAM_UNREACHABLE, `the target could not stop listening on ${where}: ${err.message}`));
      else void this.#events.emitLogged(grantedResponse(command, `stopped listening on ${forward.bindAddr}:${forward.boundPort}`));
      (err ? reject : accept)?.();
    };
    try {
      upstream.unforwardIn(forward.bindAddr, forward.boundPort, done);
    } catch (err) {
      done(err as Error);
    }
  }

  /**
   * A connection made on the target to a `-R` listener. Decided as `forwarded-tcpip host:port
   * from origin` with the listener's request and path (a rule that allowed the listener allows
   * its connections), then handed to the client; the Response records the bytes each way.
   */
  async #forwardedConnection(details: TcpConnectionDetails, acceptUpstream: AcceptConnection<ClientChannel>, rejectUpstream: RejectConnection): Promise<void> {
    const forward = this.#remoteForwards.receiving(details.destIP, details.destPort);
    if (forward === undefined) return rejectUpstream(); // cancelled meanwhile
    const release = this.#takeChannel();
    if (release === undefined) return rejectUpstream();
    const reject = () => {
      release();
      rejectUpstream();
    };
    const origin = `${details.srcIP}:${details.srcPort}`;
    const attributes = { request: 'tcpip-forward', path: `${forward.bindAddr}:${forward.bindPort}`, channel: 'forwarded-tcpip', origin, forward_command_id: forward.command.event_id };
    const command = this.#command(`forwarded-tcpip ${details.destIP}:${details.destPort} from ${origin}`, attributes);
    const refusal = await this.#forwardingRefusal(command);
    if (refusal !== undefined) {
      void this.#events.emitLogged(failureResponse(command, 'refused', null, refusal));
      return reject();
    }
    const started = nowMicros();
    this.#conn.forwardOut(details.destIP, details.destPort, details.srcIP, details.srcPort, (err, channel) => {
      if (err) {
        void this.#events.emitLogged(failureResponse(command, 'error', null, `the client did not take the connection: ${err.message}`));
        return reject();
      }
      const stream = acceptUpstream();
      channel.once('close', release);
      void relayExec(channel, stream, { exitStatus: false }).then((outcome) => this.#events.emitLogged(forwardResponse(command, outcome, started)));
    });
  }

  /**
   * `ssh -A` on a session channel: decided as `auth-agent` (request=auth-agent) and allowed only
   * by a rule that names it. When allowed, the channel's exec or shell asks the target for agent
   * forwarding; each use of the agent there is decided and recorded on its own (#agentChannel).
   */
  async #agentForwarding(accept: (() => void) | undefined, reject: (() => void) | undefined): Promise<boolean> {
    const command = this.#command('auth-agent', { request: 'auth-agent' });
    const refusal = await this.#forwardingRefusal(command);
    if (refusal !== undefined) {
      // The agent would sign for the client on the target's behalf, outside the audit.
      void this.#events.emitLogged(failureResponse(command, 'refused', null, refusal));
      reject?.();
      return false;
    }
    this.#agentRequest ??= command;
    void this.#events.emitLogged(grantedResponse(command, 'agent forwarding granted'));
    accept?.();
    return true;
  }

  /**
   * The target opened an `auth-agent@openssh.com` channel (a program there uses the forwarded
   * agent). Decided as `auth-agent channel` (request=auth-agent), then joined to a new agent
   * channel to the client; the Response records the bytes each way (up: the agent's answers).
   */
  async #agentChannel(cb: GetStreamCallback): Promise<void> {
    const granted = this.#agentRequest;
    if (granted === undefined || this.#closed) return cb(new Error('agent forwarding was not granted'));
    const release = this.#takeChannel();
    if (release === undefined) return cb(new Error('too many channels open'));
    const command = this.#command('auth-agent channel', { request: 'auth-agent', channel: 'auth-agent@openssh.com', agent_request_id: granted.event_id });
    const refusal = await this.#forwardingRefusal(command);
    if (refusal !== undefined) {
      void this.#events.emitLogged(failureResponse(command, 'refused', null, refusal));
      release();
      return cb(new Error(refusal));
    }
    let channel: ServerChannel;
    try {
      channel = await openAgentChannel(this.#conn);
    } catch (err) {
      void this.#events.emitLogged(failureResponse(command, 'error', err instanceof AgateError ? err.code : null, `the client's agent could not be reached: ${describeError(err)}`));
      release();
      return cb(err as Error);
    }
    const started = nowMicros();
    cb(undefined, meterAgentChannel(channel, (traffic) => {
      release();
      const outcome = { exitCode: 0, signal: null, bytes: traffic.down, bytesUp: traffic.up, digest: null, clientGone: false };
      void this.#events.emitLogged(forwardResponse(command, outcome, started, 'agent'));
    }));
  }

  /**
   * Forwarding opens only by a rule that names it: policy refuses it otherwise (engine.ts,
   * sshEnforceable), so the recorded verdict is the refusal enforced here.
   */
  async #forwardingRefusal(command: Command): Promise<string | undefined> {
    const decision = await this.#decide(command);
    return decision.kind === 'refuse' ? decision.message : undefined;
  }

  /** Takes a slot of the per-connection channel cap; the release frees it once. */
  #takeChannel(): (() => void) | undefined {
    if (this.#channels >= (this.#deps.maxChannels ?? MAX_CHANNELS)) return undefined;
    this.#channels += 1;
    let released = false;
    return () => {
      if (!released) this.#channels -= 1;
      released = true;
    };
  }

  /** A request refused before policy is asked (the proxy cannot audit it): recorded with its refusal. */
  #recordRefusal(text: string, attributes: Record<string, string>, message: string): void {
    const command = this.#command(text, attributes);
    void this.#events.emitLogged(command);
    void this.#events.emitLogged(failureResponse(command, 'refused', null, `Agate refused the request: ${message}`));
  }

  /** Shells and subsystems: recorded, then refused before policy is asked (the proxy cannot audit them). */
  async #refuseChannel(accept: () => ServerChannel | undefined, text: string, attributes: Record<string, string>, message: string): Promise<void> {
    const channel = accept(); // at once, for the same reason as in #exec
    if (channel === undefined) return;
    const command = this.#command(text, attributes);
    try {
      await this.#events.emit(command);
    } catch (err) {
      this.#log.error('cannot record a refused request', { error: describeError(err) });
    }
    this.#refuse(channel, command, 'refused', `Agate refused the request: ${message}`);
  }

  #refuse(channel: ServerChannel, command: Command, status: 'refused' | 'error', message: string, code: string | null = null, exitStatus = REFUSED_EXIT_STATUS): void {
    void this.#events.emitLogged(failureResponse(command, status, code, message));
    channel.stderr.write(`${message}\n`);
    channel.exit(exitStatus);
    channel.end();
  }

  // ---- recording and decisions ---------------------------------------------------------------

  #command(text: string, attributes: Record<string, string>): Command {
    return {
      type: 'Command', event_id: randomUUID(), time: nowMicros(), session_id: this.id, proxy_id: this.#deps.proxyId,
      sequence: ++this.#sequence, protocol: 'ssh', target: this.#targetName, identity: this.#identity!,
      // Tokens or keys typed on a command line must never reach the bus.
      text: this.#deps.audit.maskText(text).text, parameters: [], attributes,
    };
  }

  /** Publishes the command (write-ahead) and waits for its verdict (decide.ts); fails closed. */
  async #decide(command: Command, note?: (text: string) => void): Promise<Decision> {
    const { bus, verdictTimeoutMs } = this.#deps;
    // A hold keeps the command waiting; the client is told why, and for how long, while it does.
    const onHold = note === undefined ? undefined : (v: Verdict) => note(holdNote(v));
    const d = await decide(command, { bus, verdictTimeoutMs, events: this.#events, log: this.#log }, { onHold });
    if (d.kind !== 'run') return { kind: 'refuse', message: refusalText(d, 'command') };
    // Shell output cannot be masked reliably, so a masking verdict refuses rather than leaks.
    if (d.verdict.decision === 'mask') return { kind: 'refuse', message: `Agate refused the command: rule "${d.verdict.rule_id}" asks for masked output, which the SSH proxy cannot provide` };
    return { kind: 'run', rule: d.verdict.rule_id };
  }

  async #end(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending.done();
    const forwards = this.#remoteForwards.takeAll();
    this.#upstream?.then((c) => {
      for (const f of forwards) unforward(c, f.bindAddr, f.boundPort);
      c.end();
    }, () => undefined);
    if (this.#opened) {
      await this.#events.emitLogged({
        type: 'SessionClosed', event_id: randomUUID(), time: nowMicros(), session_id: this.id, reason: this.#closeReason,
        commands: this.#sequence, duration_us: nowMicros() - this.#startedAt,
      });
    }
    await this.#events.drained();
    this.#done();
  }
}

/** Asks the target to stop listening, without waiting: the connection may be closing. */
function unforward(upstream: Client, bindAddr: string, port: number): void {
  try {
    upstream.unforwardIn(bindAddr, port);
  } catch {
    // Not connected any more: the target dropped the listener with the connection.
  }
}

/** What a client is told while its command waits for approval. */
function holdNote(v: Verdict): string {
  const { headline, secondsLeft } = holdNotice(v, 'command');
  return `${headline}. It runs once approved (agate approve ${v.approval_id}), or is refused in ${secondsLeft} s.`;
}
