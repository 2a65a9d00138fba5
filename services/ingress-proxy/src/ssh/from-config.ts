import { readFileSync } from 'node:fs';
import { readSecret, type AgateConfig, type SshTargetConfig } from '../../../../core/src/config.js';
import { ConfigError } from '../../../../core/src/errors.js';
import type { ProxyShared } from '../proxy-shared.js';
import { AuthorizedKeys } from './authorized-keys.js';
import { loadOrCreateHostKey, parsePinnedHostKey } from './host-key.js';
import { SshProxyServer } from './server.js';
import type { SshUpstreamTarget } from './upstream.js';

/** What the SSH proxy reads from the config: only a config with `proxy.ssh` has one. */
type SshProxySlice = Pick<AgateConfig, 'source' | 'targets'> & { proxy: { ssh: NonNullable<AgateConfig['proxy']['ssh']> } };

/** Deadline for the upstream SSH handshake. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The SSH proxy of this config, not yet listening. Its host key and every target credential
 * are read here, so a missing key file fails start before any listener opens.
 */
export function sshProxyFromConfig(config: SshProxySlice, shared: ProxyShared): SshProxyServer {
  const { bus, verifier, proxyId, verdictTimeoutMs, logger, masks } = shared;
  const ssh = config.proxy.ssh;
  return new SshProxyServer({
    bus, verifier, proxyId, verdictTimeoutMs, logger, connectTimeoutMs: CONNECT_TIMEOUT_MS, audit: masks.audit,
    resolveTarget: sshTargetResolver(config), hostKey: loadOrCreateHostKey(ssh.host_key_file), maxConnections: ssh.max_connections,
    authorizedKeys: new AuthorizedKeys(ssh.authorized_keys), logins: shared.loginGuard(),
  });
}

/** SSH targets by name, with each credential read once at start (a missing key file fails start). */
function sshTargetResolver(config: SshProxySlice): (name: string) => SshUpstreamTarget | undefined {
  const targets = new Map<string, SshUpstreamTarget>();
  for (const t of config.targets.filter((t): t is SshTargetConfig => t.protocol === 'ssh')) {
    const key = `targets.${t.name}.upstream`;
    const { host, port, user, private_key_file, password, host_key } = t.upstream;
    const target: SshUpstreamTarget = { name: t.name, host, port, user, hostKey: parsePinnedHostKey(host_key) };
    if (password !== undefined) target.password = readSecret(password, `${key}.password`);
    if (private_key_file !== undefined) {
      try {
        target.privateKey = readFileSync(private_key_file);
      } catch (cause) {
        throw new ConfigError(`${config.source}: ${key}.private_key_file: cannot read ${private_key_file}`, { cause });
      }
    }
    targets.set(t.name, target);
  }
  return (name) => targets.get(name);
}
