/**
 * The SSH proxy alone in its own process, for `npm run bench -- ssh`: a local bus log and the
 * policy service (allow all) in process, no ledger or store, so the process's peak RSS is the
 * proxy's. Reads its settings as JSON from argv[2]; prints `listening <port>` when ready.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBus } from '../core/src/bus/local-bus.js';
import { parseConfig } from '../core/src/config.js';
import { remoteIssuer, TokenVerifier } from '../core/src/identity/oidc.js';
import { silentLogger } from '../core/src/log.js';
import { MaskSets } from '../services/ingress-proxy/src/masking/mask-sets.js';
import { generateHostKey, parsePinnedHostKey } from '../services/ingress-proxy/src/ssh/host-key.js';
import { loginGuard, loginThrottle } from '../core/src/logins/from-config.js';
import { SshProxyServer } from '../services/ingress-proxy/src/ssh/server.js';
import { CompiledPolicy } from '../services/policy/src/engine.js';
import { PolicyService } from '../services/policy/src/service.js';

interface ChildSettings {
  issuer: string;
  jwksUri: string;
  sshd: { host: string; port: number; user: string; clientKeyFile: string; hostPublicKey: string };
}

const settings = JSON.parse(process.argv[2]!) as ChildSettings;
const dir = mkdtempSync(join(tmpdir(), 'agate-ssh-bench-proxy-'));
const config = parseConfig('identity: { dev_issuer: { enabled: true } }\npolicy: { default: allow }\n', 'bench.yaml');
const bus = new LocalBus({ dir: join(dir, 'bus'), fsync: true, logger: silentLogger });
const policy = new PolicyService({ bus, policy: new CompiledPolicy(config.policy), logger: silentLogger, staleAfterMs: 5000 });
await policy.start();
const { sshd } = settings;
const target = { name: 'box', host: sshd.host, port: sshd.port, user: sshd.user, privateKey: readFileSync(sshd.clientKeyFile), hostKey: parsePinnedHostKey(sshd.hostPublicKey) };
const proxy = new SshProxyServer({
  bus, proxyId: 'bench', verdictTimeoutMs: 5000, connectTimeoutMs: 5000, logger: silentLogger, maxConnections: 16,
  verifier: new TokenVerifier([remoteIssuer({ issuer: settings.issuer, jwks_uri: settings.jwksUri, audience: 'agate', algorithms: ['ES256', 'RS256'], clock_tolerance_s: 30, max_token_lifetime_s: 3600, subject_claim: 'sub', jwks_max_age_s: 60 })]),
  resolveTarget: (n) => (n === 'box' ? target : undefined),
  audit: MaskSets.compile(config.masking, config.source).audit,
  hostKey: Buffer.from(generateHostKey()),
  logins: loginGuard(config.logins, loginThrottle(config.logins)),
});
const { port } = await proxy.listen('127.0.0.1', 0);
console.log(`listening ${port}`);
process.on('SIGTERM', () => {
  void (async () => {
    await proxy.shutdown();
    await policy.stop();
    await bus.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  })();
});
