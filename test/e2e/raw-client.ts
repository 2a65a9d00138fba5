// A bare protocol client for tests that need exact control of what is sent (pipelines, odd
// message orders): frontend messages from pg-protocol's serializer, replies parsed by its parser.
import { connect, type Socket } from 'node:net';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';

export type Reply = BackendMessage & { text?: string; code?: string; message?: string; status?: string; fields?: unknown[] };

export class RawClient {
  readonly #socket: Socket;
  readonly #parser = new Parser();
  readonly #replies: Reply[] = [];
  /** The BackendKeyData the server (Agate) handed out at login. */
  key: { processId: number; secretKey: number } | undefined;
  #waiter: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk) => {
      this.#parser.parse(chunk, (m) => this.#replies.push(m as Reply));
      this.#waiter?.();
    });
    socket.on('error', () => {});
  }

  /** Connects and logs in with `password` (the token); resolves after the first ReadyForQuery. */
  static async login(host: string, port: number, password: string, database = 'appdb', params: Record<string, string> = {}): Promise<RawClient> {
    const socket = connect({ host, port });
    await new Promise<void>((resolve, reject) => (socket.once('connect', resolve), socket.once('error', reject)));
    const c = new RawClient(socket);
    socket.write(serialize.startup({ user: 'agent', database, ...params }));
    await c.until((r) => r.name === 'authenticationCleartextPassword');
    socket.write(serialize.password(password));
    const hello = await c.until((r) => r.name === 'readyForQuery');
    const k = hello.find((r) => r.name === 'backendKeyData') as { processID?: number; secretKey?: number } | undefined;
    if (k !== undefined) c.key = { processId: k.processID!, secretKey: k.secretKey! };
    c.take();
    return c;
  }

  send(...frames: Buffer[]): void {
    this.#socket.write(Buffer.concat(frames));
  }

  /** Waits until a reply satisfies `done`; returns every reply so far. */
  async until(done: (r: Reply) => boolean, timeoutMs = 30_000): Promise<Reply[]> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#replies.some(done)) {
      if (Date.now() > deadline) throw new Error(`timed out; got ${this.#replies.map((r) => r.name).join(',')}`);
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        setTimeout(resolve, 50);
      });
    }
    return this.#replies;
  }

  /** Waits for the `n`th ReadyForQuery and returns the replies up to it, removing them. */
  async readyCount(n: number): Promise<Reply[]> {
    await this.until(() => this.#replies.filter((r) => r.name === 'readyForQuery').length >= n);
    return this.take();
  }

  /** Bytes this client has queued but the kernel has not taken: grows once the peer stops reading. */
  get unsentBytes(): number {
    return this.#socket.writableLength;
  }

  /** Replies so far, left in place. */
  get replies(): readonly Reply[] {
    return this.#replies;
  }

  take(): Reply[] {
    return this.#replies.splice(0);
  }

  close(): void {
    this.#socket.end(serialize.end());
  }

  /** Sends `frames` then Terminate in one write, and drops the connection at once without reading. */
  sendAndLeave(...frames: Buffer[]): void {
    this.#socket.end(Buffer.concat([...frames, serialize.end()]));
    this.#socket.destroy();
  }
}
