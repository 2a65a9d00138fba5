import ssh2 from 'ssh2';
import type { AuthenticationType, BaseAgent, Client } from 'ssh2';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { fingerprint, hostKeyMatches, type PinnedHostKey } from './host-key.js';

/** Everything needed to log in to one SSH target as Agate, credential resolved. */
export interface SshUpstreamTarget {
  name: string;
  host: string;
  port: number;
  user: string;
  privateKey?: Buffer;
  password?: string;
  hostKey: PinnedHostKey;
}

/**
 * Opens an SSH connection to the target with Agate's own credential. The target must present
 * the pinned host key; any other key ends the handshake before a credential is sent.
 * `agent` answers the auth-agent channels the target opens once agent forwarding is requested
 * on a channel; it is never used to log in.
 */
export function connectUpstream(target: SshUpstreamTarget, timeoutMs: number, agent?: BaseAgent): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let presented: string | undefined;
    let settled = false;
    client.once('ready', () => {
      settled = true;
      client.setNoDelay(true); // as on the client side (server.ts): no Nagle stall per small packet
      resolve(client);
    });
    client.on('error', (err: Error & { level?: string }) => {
      if (settled) return; // later errors surface as 'close' on the session's side
      settled = true;
      client.end();
      if (presented !== undefined) {
        const message = `target "${target.name}" presented host key ${presented}, which is not its pinned host_key; the connection was refused`;
        reject(new AgateError(ErrorCode.UPSTREAM_HOST_KEY_MISMATCH, message, { cause: err }));
      } else if (err.level === 'client-authentication') {
        reject(new AgateError(ErrorCode.UPSTREAM_AUTH_FAILED, `target "${target.name}" refused Agate's credential for user ${target.user}`, { cause: err }));
      } else {
        reject(new AgateError(ErrorCode.UPSTREAM_UNREACHABLE, `cannot reach target "${target.name}": ${err.message}`, { cause: err, retriable: true }));
      }
    });
    client.connect({
      host: target.host,
      port: target.port,
      username: target.user,
      privateKey: target.privateKey,
      password: target.password,
      agent,
      // ssh2 would try a configured agent as a login method too; only Agate's credential logs in.
      authHandler: loginMethods(target),
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        if (hostKeyMatches(target.hostKey, key)) return true;
        presented = fingerprint(key);
        return false;
      },
    });
  });
}

/** ssh2's default order (none, password, publickey) without the agent. */
function loginMethods(target: SshUpstreamTarget): AuthenticationType[] {
  const methods: AuthenticationType[] = ['none'];
  if (target.password !== undefined) methods.push('password');
  if (target.privateKey !== undefined) methods.push('publickey');
  return methods;
}
