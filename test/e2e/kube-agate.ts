// One `agate start` with a kubernetes target in front of a real kube-apiserver, and the real
// kubectl pointed at it through the kubeconfig `agate kubeconfig` prints: the setup shared by the
// Kubernetes end-to-end files that need only one target and their own policy.
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventCodec } from '../../schemas/src/codec.js';
import type { AgateEvent, Command, Response, Verdict } from '../../schemas/src/events.js';
import { startKubeApiServer, type KubeApiServer, type StartKubeApiServerOptions } from '../harness/kube-apiserver.js';
import { startOidcIssuer, type OidcIssuer } from '../harness/oidc-issuer.js';
import { findFreePort } from '../harness/postgres.js';
import { run, type RunResult } from '../harness/proc.js';
import { cleanEnv, startAgateProcess, type AgatePlaces, type AgateProcess } from './agate-process.js';
import { busLogBytes, logEvents } from './bus-log.js';

export interface KubeAgate {
  kube: KubeApiServer;
  issuer: OidcIssuer;
  agate: AgateProcess;
  kubeconfig: string;
  cacheDir: string;
  /** The proxy's URL (`https://127.0.0.1:PORT`; its certificate is signed by `kube.other.caFile`). */
  server: string;
  /** Agate's Kubernetes listener on 127.0.0.1 (the port of `server`). */
  port: number;
}

/**
 * Starts everything; `policyYaml` is the config's `policy:` section (indented as at top level),
 * `extraYaml` more top-level sections, `kubeOptions` how the API server starts (its audit log).
 */
export async function startKubeAgate(policyYaml: string, targetExtra = '', extraYaml = '', kubeOptions: StartKubeApiServerOptions = {}): Promise<KubeAgate> {
  const [kube, issuer] = await Promise.all([startKubeApiServer(kubeOptions), startOidcIssuer({ audience: 'agate' })]);
  const port = await findFreePort();
  const agate = await startAgateProcess({ configYaml: kubeAgateConfig(issuer, `${kubeTargetYaml(kube, 'cluster', port)}${targetExtra}\n`, policyYaml, extraYaml) });
  const r = await agate.cli(['kubeconfig', '--config', agate.configPath, '--target', 'cluster', '--server', `https://127.0.0.1:${port}`]);
  assert.is(r.code, 0, r.stderr);
  const kubeconfig = join(agate.dir, 'agent.kubeconfig');
  writeFileSync(kubeconfig, r.stdout);
  return { kube, issuer, agate, kubeconfig, cacheDir: join(agate.dir, 'kube-cache'), server: `https://127.0.0.1:${port}`, port };
}

/**
 * A config for `agate start` trusting `issuer`, with `targetsYaml` (list items, e.g. from
 * `kubeTargetYaml`), the `policy:` section `policyYaml` and more top-level sections `extraYaml`.
 */
export function kubeAgateConfig(issuer: OidcIssuer, targetsYaml: string, policyYaml: string, extraYaml = ''): (p: AgatePlaces) => string {
  const q = (s: string) => JSON.stringify(s);
  return (p) => `data_dir: ${q(p.dataDir)}
identity:
  issuers:
    - { issuer: ${q(issuer.issuer)}, audience: agate }
proxy:
  postgres: { listen: ${q(p.pgListen)} }
  verdict_timeout_ms: 10000
targets:
${targetsYaml}
${policyYaml}
query:
  listen: ${q(p.apiListen)}
${extraYaml}
`;
}

/** A `targets:` list item: Kubernetes target `name` listening on `port` with the API server's other certificate, reaching it through `kubeconfig`. */
export function kubeTargetYaml(kube: KubeApiServer, name: string, port: number, kubeconfig = kube.adminKubeconfigPath): string {
  const q = (s: string) => JSON.stringify(s);
  return `  - name: ${name}
    protocol: kubernetes
    listen: 127.0.0.1:${port}
    tls: { cert: ${q(kube.other.certFile)}, key: ${q(kube.other.keyFile)}, ca: ${q(kube.other.caFile)} }
    upstream: { kubeconfig: ${q(kubeconfig)} }
`;
}

export async function stopKubeAgate(ctx: Partial<KubeAgate>): Promise<void> {
  await ctx.agate?.dispose();
  await ctx.issuer?.close();
  await ctx.kube?.stop();
}

/** A fresh token for the agent, shaped like a GitHub Actions id-token. */
export async function agentToken(ctx: Pick<KubeAgate, 'issuer'>): Promise<string> {
  return ctx.issuer.mint(ctx.issuer.githubActionsClaims());
}

/** kubectl through Agate, the agent's token in AGATE_TOKEN (read by the kubeconfig's exec plugin). */
export async function agentKubectl(ctx: KubeAgate, args: string[], opts: { input?: string } = {}): Promise<RunResult> {
  const token = await agentToken(ctx);
  return run(ctx.kube.kubectlPath, ['--kubeconfig', ctx.kubeconfig, '--cache-dir', ctx.cacheDir, ...args], {
    env: cleanEnv({ AGATE_TOKEN: token }), input: opts.input, timeoutMs: 60_000,
  });
}

export function busLog(ctx: Pick<KubeAgate, 'agate'>): Buffer {
  return busLogBytes(join(ctx.agate.dataDir, 'bus'));
}

export function events(ctx: Pick<KubeAgate, 'agate'>): AgateEvent[] {
  return logEvents(busLog(ctx), new EventCodec());
}

export const commandsWhere = (evs: AgateEvent[], test: (c: Command) => boolean) => evs.filter((e): e is Command => e.type === 'Command' && e.protocol === 'kubernetes' && test(e));
export const responsesOf = (evs: AgateEvent[], c: Command) => evs.filter((e): e is Response => e.type === 'Response' && e.command_id === c.event_id);
export const verdictOf = (evs: AgateEvent[], c: Command) => evs.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === c.event_id);

/** Analyst SQL through the query API. */
export async function sql<T>(ctx: Pick<KubeAgate, 'agate' | 'issuer'>, text: string): Promise<T[]> {
  const token = await ctx.issuer.mint({ sub: 'auditor', agate_role: 'analyst' });
  const res = await fetch(`${ctx.agate.apiUrl}/v1/sql`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ sql: text }) });
  const body = (await res.json()) as { rows?: T[] };
  assert.is(res.status, 200, JSON.stringify(body));
  return body.rows ?? [];
}
