import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import type { AgateConfig } from '../../core/src/config.js';
import { ConfigError } from '../../core/src/errors.js';
import { kubernetesTargets } from '../../services/ingress-proxy/src/k8s/from-config.js';

export interface KubeconfigOptions {
  target: string;
  /** Default: https:// and the target's listen address. */
  server?: string;
  /** A literal token written into the file (for a throwaway file; prefer tokenEnv). */
  token?: string;
  /** The environment variable the exec plugin reads the token from; default AGATE_TOKEN. */
  tokenEnv?: string;
}

/**
 * A kubeconfig that points kubectl at Agate's endpoint for one Kubernetes target. The cluster's
 * CA is the one that signed Agate's serving certificate (`tls.ca`, or the certificate itself).
 * The user is the agent's OIDC token: by default an exec credential plugin (`sh`, no download)
 * prints it from an environment variable each time kubectl runs, so a CI job sets AGATE_TOKEN to
 * its fresh id-token and the file itself holds no secret.
 */
export function kubeconfigFor(config: AgateConfig, options: KubeconfigOptions): string {
  const t = kubernetesTargets(config).find((k) => k.name === options.target);
  if (t === undefined) {
    const names = kubernetesTargets(config).map((k) => k.name);
    throw new ConfigError(`${config.source}: no Kubernetes target named "${options.target}" (Kubernetes targets: ${names.join(', ') || 'none'})`);
  }
  const caFile = t.tls.ca ?? t.tls.cert;
  let ca: Buffer;
  try {
    ca = readFileSync(caFile);
  } catch (cause) {
    throw new ConfigError(`${config.source}: targets.${t.name}.tls: cannot read ${caFile}`, { cause });
  }
  const name = `agate-${t.name}`;
  const env = options.tokenEnv ?? 'AGATE_TOKEN';
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(env)) throw new ConfigError(`--token-env expects an environment variable name, got "${env}"`);
  const user = options.token !== undefined
    ? { token: options.token }
    : {
        exec: {
          apiVersion: 'client.authentication.k8s.io/v1',
          command: 'sh',
          // Prints an ExecCredential; fails (and kubectl says so) when the variable is unset.
          args: ['-c', `test -n "$${env}" || { echo "set ${env} to your OIDC token" >&2; exit 1; }; printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "$${env}"`],
          interactiveMode: 'Never',
          provideClusterInfo: false,
        },
      };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: options.server ?? `https://${t.listen}`, 'certificate-authority-data': ca.toString('base64') } }],
    users: [{ name: `${name}-agent`, user }],
    contexts: [{ name, context: { cluster: name, user: `${name}-agent` } }],
    'current-context': name,
  });
}
