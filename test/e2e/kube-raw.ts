// Raw clients against Agate's Kubernetes proxy, for the hostile suites (k8s-hostile,
// k8s-hostile-forms): requests sent exactly as written, with no client-side normalization of the
// path, headers or framing that kubectl or a library would apply, and the API server's own audit
// log read back as the witness of what reached it.
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:tls';
import type { KubeAuditEvent } from '../harness/kube-apiserver.js';
import { agentToken, startKubeAgate, type KubeAgate } from './kube-agate.js';

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** The message of a Status body (throws when the body is not JSON). */
export function statusMessage(r: RawAnswer): string {
  return String((JSON.parse(r.body) as { message?: unknown }).message);
}

/** The message of a Status body, or the body itself when it is not JSON. */
export function statusOrBody(r: RawAnswer): string {
  try {
    return statusMessage(r);
  } catch {
    return r.body;
  }
}

/** kubectl as the cluster's administrator, straight to the API server; asserts it succeeds. */
export async function admin(ctx: KubeAgate, args: string[], input?: string): Promise<void> {
  const r = await ctx.kube.kubectl(args, { input });
  assert.is(r.code, 0, r.stderr);
}

/** One HTTPS request to Agate with the path and body bytes exactly as given. */
export async function raw(ctx: KubeAgate, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<RawAnswer> {
  const token = await agentToken(ctx);
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port: ctx.port, method, path, ca: readFileSync(ctx.kube.other.caFile), agent: false,
      headers: { authorization: `Bearer ${token}`, ...headers, ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A TLS connection to Agate that writes exactly the bytes given and collects what comes back. */
export async function tlsSession(ctx: KubeAgate) {
  const socket = connect({ host: '127.0.0.1', port: ctx.port, ca: readFileSync(ctx.kube.other.caFile), ALPNProtocols: ['http/1.1'] });
  await new Promise<void>((resolve, reject) => (socket.once('secureConnect', resolve), socket.once('error', reject)));
  let received = '';
  let closed = false;
  socket.setEncoding('latin1').on('data', (d: string) => (received += d));
  socket.on('error', () => {});
  socket.once('close', () => (closed = true));
  return {
    write: (data: string | Buffer) => socket.write(data),
    /** Waits until `done` holds for what was received, the socket closed, or `ms` passed (default 20 s: a loaded machine). */
    async settle(done: (s: string) => boolean, ms = 20_000): Promise<string> {
      const end = Date.now() + ms;
      while (!done(received) && !closed && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      return received;
    },
    get closed() {
      return closed;
    },
    end: () => socket.destroy(),
  };
}

/** One whole HTTP answer received: headers, and an empty or JSON body. */
export const complete = (s: string) => /\r\n\r\n/.test(s) && (/content-length: 0\r\n/i.test(s) || /\r\n\r\n[\s\S]*\}\s*$/.test(s));

/** The API server's completed audit events (ResponseComplete stage) matching `keep`. */
export async function audited(ctx: KubeAgate, keep: (e: KubeAuditEvent) => boolean): Promise<KubeAuditEvent[]> {
  return (await ctx.kube.auditEvents()).filter((e) => e.stage === 'ResponseComplete' && keep(e));
}

/**
 * Fills `ctx` with Agate in front of a kube-apiserver that writes its audit log, then runs the
 * suite's own setup. Logs a failure: uvu does not report an error thrown by a before hook.
 */
export async function startAuditedKube(ctx: KubeAgate, policyYaml: string, setup: () => Promise<void>): Promise<void> {
  try {
    Object.assign(ctx, await startKubeAgate(policyYaml, '', '', { auditLog: true }));
    await setup();
  } catch (err) {
    console.error('setup failed:', err);
    throw err;
  }
}

/*
 * Policy rules the hostile suites share, as items of a `rules:` list (each interpolated into a
 * suite's own `policy:` YAML), so one wording and one match serve every file that uses them.
 */

export const NO_PRIVILEGE_CHANGES = `    - id: no-privilege-changes
      action: deny
      message: changing who can do what needs a human
      match:
        kubernetes: { privilege: ["*"] }
`;

export const SECRETS_READ_MASKED = `    - id: secrets-read-masked
      action: allow
      mask_client: true
      match:
        kubernetes: { verbs: [get, list, watch], resources: [secrets] }
`;

export const NO_VAULT_CONFIG = `    - id: no-vault-config
      action: deny
      message: configuration in vault is not read by agents
      match:
        kubernetes: { verbs: [get, list, watch], resources: [configmaps], namespaces: [vault] }
`;

export const NO_POD_DELETES_IN_PROD = `    - id: no-pod-deletes-in-prod
      action: deny
      message: pods in prod are not deleted by agents
      match:
        kubernetes: { verbs: [delete], resources: [pods], namespaces: [prod] }
`;
