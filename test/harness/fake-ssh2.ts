import { EventEmitter } from 'node:events';
import type { AuthContext, Client, Connection, ServerChannel, Session } from 'ssh2';

/*
 * Fakes of ssh2's objects, for unit tests of the SSH proxy's session parts only: each records
 * what the code under test did to it (accepted, rejected, wrote, opened) and calls back as a
 * test scripts it. End-to-end tests use real OpenSSH clients and sshd (test/e2e/ssh*.test.ts).
 */

/** A server-side channel towards the client: what was written to stdout and stderr, its exit status. */
export class FakeServerChannel extends EventEmitter {
  readonly stdout: string[] = [];
  readonly stderr = { written: [] as string[], write: (s: string) => void this.stderr.written.push(String(s)) };
  exitStatus: number | undefined;
  ended = false;
  paused = false;
  destroyed = false;

  pause(): this {
    this.paused = true;
    return this;
  }

  write(data: string | Buffer): boolean {
    this.stdout.push(String(data));
    return true;
  }

  exit(status: number): void {
    this.exitStatus = status;
  }

  end(): this {
    this.ended = true;
    return this;
  }

  asChannel(): ServerChannel {
    return this as unknown as ServerChannel;
  }
}

/** The client's connection as ssh2's server hands it over; `forwardOut` calls are recorded and fail. */
export class FakeConnection extends EventEmitter {
  ended = 0;
  readonly forwardOuts: Array<{ destIP: string; destPort: number }> = [];

  end(): this {
    this.ended += 1;
    return this;
  }

  forwardOut(boundAddr: string, boundPort: number, _remoteAddr: string, _remotePort: number, cb: (err: Error | undefined) => void): this {
    this.forwardOuts.push({ destIP: boundAddr, destPort: boundPort });
    cb(new Error('fake client takes no connections'));
    return this;
  }

  asConnection(): Connection {
    return this as unknown as Connection;
  }
}

/** One call the code under test made on the upstream connection, and what it had seen by then. */
interface UpstreamCall {
  method: 'exec' | 'shell' | 'subsys' | 'sftp' | 'forwardOut' | 'forwardIn' | 'unforwardIn';
  args: unknown[];
}

/**
 * Agate's connection to the target. Every call is recorded (with `onCall` run at that moment,
 * so a test can note what had happened before it) and answered with an error, unless `answers`
 * scripts what its callback gets (e.g. `forwardIn: [undefined, 40001]`); nothing is relayed.
 */
export class FakeUpstream extends EventEmitter {
  readonly calls: UpstreamCall[] = [];
  onCall: (call: UpstreamCall) => void = () => undefined;
  answers: Partial<Record<UpstreamCall['method'], unknown[]>> = {};

  #record(method: UpstreamCall['method'], args: unknown[]): void {
    const call = { method, args: args.filter((a) => typeof a !== 'function') };
    this.calls.push(call);
    this.onCall(call);
    const cb = args.find((a) => typeof a === 'function') as ((...answer: unknown[]) => void) | undefined;
    const answer = this.answers[method];
    if (answer !== undefined) cb?.(...answer);
    else cb?.(new Error(`the fake target refuses ${method}`));
  }

  exec(...args: unknown[]): this { this.#record('exec', args); return this; }
  shell(...args: unknown[]): this { this.#record('shell', args); return this; }
  subsys(...args: unknown[]): this { this.#record('subsys', args); return this; }
  /** Agate's own sftp channel (it resolves the paths a client names). */
  sftp(...args: unknown[]): this { this.#record('sftp', args); return this; }
  forwardOut(...args: unknown[]): this { this.#record('forwardOut', args); return this; }
  forwardIn(...args: unknown[]): this { this.#record('forwardIn', args); return this; }
  unforwardIn(...args: unknown[]): this { this.#record('unforwardIn', args); return this; }
  end(): this { return this; }

  asClient(): Client {
    return this as unknown as Client;
  }
}

/** A session channel's request stream: tests emit 'exec', 'env', … on it with fake accept/reject. */
export class FakeSession extends EventEmitter {
  asSession(): Session {
    return this as unknown as Session;
  }
}

/** What happened to one accept/reject pair ssh2 hands a request handler. */
export class FakeReply {
  accepted = 0;
  rejected = 0;
  readonly channel = new FakeServerChannel();
  readonly accept = (): ServerChannel => {
    this.accepted += 1;
    return this.channel.asChannel();
  };
  readonly reject = (): void => {
    this.rejected += 1;
  };
}

/** The outcome of one authentication attempt. */
type AuthOutcome = { kind: 'pending' } | { kind: 'accepted' } | { kind: 'rejected'; methods: string[]; partial: boolean | undefined };

/** A password attempt: `outcome` says how the code under test answered it. */
export function fakePasswordAttempt(username: string, password: string): { ctx: AuthContext; outcome: () => AuthOutcome; settled: Promise<void> } {
  return fakeAttempt({ method: 'password', username, password });
}

/**
 * A keyboard-interactive attempt answered from `answers` in turn; each prompt the code under
 * test shows is kept in `prompts` (its text and the instructions above it).
 */
export function fakeKeyboardAttempt(username: string, answers: string[]): { ctx: AuthContext; outcome: () => AuthOutcome; settled: Promise<void>; prompts: Array<{ prompt: string; instructions: string }> } {
  const prompts: Array<{ prompt: string; instructions: string }> = [];
  const queue = [...answers];
  const attempt = fakeAttempt({
    method: 'keyboard-interactive', username, submethods: [],
    prompt: (questions: Array<{ prompt: string }>, _title: string, instructions: string, cb: (answers: string[]) => void) => {
      prompts.push({ prompt: questions[0]?.prompt ?? '', instructions });
      setImmediate(() => cb([queue.shift() ?? '']));
    },
  });
  return { ...attempt, prompts };
}

function fakeAttempt(fields: Record<string, unknown>): { ctx: AuthContext; outcome: () => AuthOutcome; settled: Promise<void> } {
  let outcome: AuthOutcome = { kind: 'pending' };
  let settle!: () => void;
  const settled = new Promise<void>((r) => (settle = r));
  const ctx = {
    ...fields,
    service: 'ssh-connection',
    accept: () => {
      outcome = { kind: 'accepted' };
      settle();
    },
    reject: (methods: string[] = [], partial?: boolean) => {
      outcome = { kind: 'rejected', methods, partial };
      settle();
    },
  };
  return { ctx: ctx as unknown as AuthContext, outcome: () => outcome, settled };
}
