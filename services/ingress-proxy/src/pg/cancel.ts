import { randomInt } from 'node:crypto';
import { connect } from 'node:net';

/** A backend key as PostgreSQL hands it out in BackendKeyData. */
export interface BackendKey {
  processId: number;
  secretKey: number;
}

/** Where and with which key to cancel the upstream backend behind one client session. */
interface CancelRoute {
  host: string;
  port: number;
  upstream: BackendKey;
  /**
   * Records (and decides) the cancel in the session it targets, before it is forwarded: `forward`
   * false when refused; `done` records that it was sent. Absent: forwarded unrecorded (tests).
   */
  admit?: (from: string) => Promise<CancelAdmission>;
}

export type CancelAdmission = { forward: true; done: () => void } | { forward: false };

const CANCEL_REQUEST_CODE = 80877102; // 1234 << 16 | 5678

/**
 * Maps the keys Agate gives its clients to the upstream backends behind them. Clients never see
 * an upstream key; a CancelRequest carrying an Agate key is forwarded as a real CancelRequest to
 * the right server. One registry per proxy server (shared by its sessions).
 */
export class CancelRegistry {
  readonly #routes = new Map<string, CancelRoute>();

  /** Issues a fresh client key for `route`; `release` forgets it when the session ends. */
  register(route: CancelRoute): { key: BackendKey; release: () => void } {
    let key: BackendKey;
    let id: string;
    do {
      key = { processId: randomInt(1, 2 ** 31 - 1), secretKey: randomInt(0, 2 ** 31 - 1) };
      id = keyId(key);
    } while (this.#routes.has(id));
    this.#routes.set(id, route);
    return { key, release: () => void this.#routes.delete(id) };
  }

  /** The route for a client's key, if it is one Agate issued and the session is still open. */
  lookup(key: BackendKey): CancelRoute | undefined {
    return this.#routes.get(keyId(key));
  }
}

const keyId = (k: BackendKey): string => `${k.processId >>> 0}:${k.secretKey >>> 0}`;

// CancelRequest: Int32 16 | Int32 80877102 | Int32 process id | Int32 secret key
export function cancelRequestPacket(key: BackendKey): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32BE(16, 0);
  b.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  b.writeInt32BE(key.processId | 0, 8);
  b.writeInt32BE(key.secretKey | 0, 12);
  return b;
}

/**
 * Sends a CancelRequest upstream on a connection of its own, as the protocol requires; the
 * server answers nothing and closes. Resolves either way: a cancel is best effort.
 */
export function sendCancel(route: CancelRoute, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host: route.host, port: route.port });
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    socket.once('connect', () => socket.end(cancelRequestPacket(route.upstream)));
    socket.once('close', done);
    socket.once('error', done);
  });
}
