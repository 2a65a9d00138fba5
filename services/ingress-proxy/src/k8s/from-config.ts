import { readFileSync } from 'node:fs';
import { ConfigError } from '../../../../core/src/errors.js';
import type { AgateConfig, KubernetesTargetConfig } from '../../../../core/src/config.js';
import type { MaskSets } from '../masking/mask-sets.js';
import type { ProxyShared } from '../proxy-shared.js';
import { parseFieldRule } from './json-mask.js';
import { KubeProxyServer, type KubeProxyTarget } from './server.js';
import { KubeUpstream } from './upstream.js';

export function kubernetesTargets(config: Pick<AgateConfig, 'targets'>): KubernetesTargetConfig[] {
  return config.targets.filter((t): t is KubernetesTargetConfig => t.protocol === 'kubernetes');
}

/** What one Kubernetes target's proxy reads from the config: a listener per target. */
interface KubeProxySlice {
  source: string;
  target: KubernetesTargetConfig;
  /** Its place in `targets`, which errors name. */
  index: number;
}

/** One slice per Kubernetes target of the config. */
export function kubeProxySlices(config: Pick<AgateConfig, 'source' | 'targets'>): KubeProxySlice[] {
  return kubernetesTargets(config).map((target) => ({ source: config.source, target, index: config.targets.indexOf(target) }));
}

/** One Kubernetes target's proxy, not yet listening; its files are read here (a bad one fails start). */
export async function kubeProxyFromConfig(slice: KubeProxySlice, shared: ProxyShared): Promise<KubeProxyServer> {
  const { bus, verifier, proxyId, verdictTimeoutMs, logger, masks } = shared;
  return new KubeProxyServer({ bus, verifier, proxyId, verdictTimeoutMs, logger, target: await kubeProxyTarget(slice, masks), logins: shared.loginGuard() });
}

/**
 * Everything one Kubernetes target's proxy needs, loaded once at start: the serving certificate,
 * the kubeconfig credential, its field rules; the mask sets are the ones compiled for every
 * protocol. A bad file or kubeconfig fails start.
 */
async function kubeProxyTarget({ source, target: t, index }: KubeProxySlice, masks: MaskSets): Promise<KubeProxyTarget> {
  const where = `${source}: targets[${index}]`;
  const read = (path: string, key: string) => {
    try {
      return readFileSync(path);
    } catch (cause) {
      throw new ConfigError(`${where}.${key}: cannot read ${path}`, { cause });
    }
  };
  const fields = t.mask_fields.map((spec, j) => parseFieldRule(spec, `${where}.mask_fields[${j}]`));
  const tls = { cert: read(t.tls.cert, 'tls.cert'), key: read(t.tls.key, 'tls.key') };
  const upstream = await KubeUpstream.load(t.upstream.kubeconfig, t.upstream.context, `${where}.upstream`);
  return {
    name: t.name, upstream, tls, maskers: masks.byName, maskClient: masks.clientSet(t.mask_client),
    recording: { sampleRows: t.record_objects, valueChars: t.record_value_chars, audit: masks.audit, fields },
    maxBodyBytes: t.max_body_bytes, maxBufferBytes: t.max_buffer_bytes, allowDiscovery: t.allow_discovery, maxConnections: t.max_connections,
  };
}
