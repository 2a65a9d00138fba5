import { ConfigResourceTypes, type Admin } from '@platformatic/kafka';
import { waitForLeaders } from './kafka-client.js';

/** What a topic Agate uses must look like. */
interface TopicSpec {
  topic: string;
  partitions: number;
  replicationFactor: number;
  /** Topic-level configs Agate relies on, as Kafka spells them. */
  configs: Record<string, string>;
}

interface TopicSettings {
  eventsTopic: string;
  verdictsTopic: string;
  partitions: number;
  replicationFactor: number;
  /** Default min(2, replicationFactor): an acknowledged write survives one broker's loss. */
  minInsyncReplicas?: number;
  /** How long the events topic keeps events (the ledger is the lasting record); -1 forever. */
  retentionMs: number;
}

/**
 * Verdicts are read only by proxies waiting on them, from the newest offset; a day covers any
 * hold. Same partitions as the events topic, so keys spread the same way.
 */
const VERDICT_RETENTION_MS = 86_400_000;

/** Kafka's own default (7 days): the ledger catches up within it after any outage. */
export const DEFAULT_RETENTION_MS = 604_800_000;

export function topicSpecs(s: TopicSettings): TopicSpec[] {
  const minIsr = String(s.minInsyncReplicas ?? Math.min(2, s.replicationFactor));
  const base = { partitions: s.partitions, replicationFactor: s.replicationFactor };
  return [
    { topic: s.eventsTopic, ...base, configs: { 'min.insync.replicas': minIsr, 'retention.ms': String(s.retentionMs), 'cleanup.policy': 'delete' } },
    { topic: s.verdictsTopic, ...base, configs: { 'min.insync.replicas': minIsr, 'retention.ms': String(VERDICT_RETENTION_MS), 'cleanup.policy': 'delete' } },
  ];
}

export type TopicStatus =
  | { topic: string; status: 'created' | 'ok' }
  | { topic: string; status: 'missing' }
  | { topic: string; status: 'differs'; problems: string[] };

/**
 * Creates the missing topics (unless `checkOnly`) and compares the existing ones with their spec.
 * Differences are reported, never changed: fewer partitions than configured would need new
 * partitions, which moves sessions' keys to other partitions (and other ledger chains) mid-stream,
 * and a replication factor change is a reassignment; both are an operator's decision.
 */
export async function provisionTopics(admin: Admin, specs: readonly TopicSpec[], checkOnly: boolean): Promise<TopicStatus[]> {
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !existing.has(s.topic));
  if (!checkOnly && missing.length > 0) {
    const { brokers } = await admin.metadata({ topics: [], forceUpdate: true });
    const tooFew = missing.find((s) => s.replicationFactor > brokers.size);
    if (tooFew !== undefined) throw new Error(`cannot create ${tooFew.topic} with replication factor ${tooFew.replicationFactor}: the cluster has ${brokers.size} broker${brokers.size === 1 ? '' : 's'}`);
    await createTopics(admin, missing);
  }
  const present = specs.filter((s) => existing.has(s.topic));
  const found = new Map<string, string[]>();
  if (present.length > 0) {
    const { topics } = await admin.metadata({ topics: present.map((s) => s.topic), forceUpdate: true });
    const resources = await admin.describeConfigs({
      includeSynonyms: false,
      resources: present.map((s) => ({ resourceType: ConfigResourceTypes.TOPIC, resourceName: s.topic, configurationKeys: Object.keys(s.configs) })),
    });
    for (const spec of present) {
      const problems: string[] = [];
      const meta = topics.get(spec.topic);
      const partitions = meta?.partitionsCount ?? 0;
      if (partitions !== spec.partitions) problems.push(`partitions: ${partitions}, config says ${spec.partitions}`);
      const rf = Math.min(...(meta?.partitions.map((p) => p.replicas.length) ?? [0]));
      if (rf !== spec.replicationFactor) problems.push(`replication factor: ${rf}, config says ${spec.replicationFactor}`);
      const entries = resources.find((r) => r.resourceName === spec.topic)?.configs ?? [];
      for (const [name, want] of Object.entries(spec.configs)) {
        const have = entries.find((e) => e.name === name)?.value;
        if (have !== want) problems.push(`${name}: ${have ?? '(unset)'}, config says ${want}`);
      }
      found.set(spec.topic, problems);
    }
  }
  return specs.map((s): TopicStatus => {
    if (!existing.has(s.topic)) return { topic: s.topic, status: checkOnly ? 'missing' : 'created' };
    const problems = found.get(s.topic)!;
    return problems.length === 0 ? { topic: s.topic, status: 'ok' } : { topic: s.topic, status: 'differs', problems };
  });
}

/**
 * Creates topics as their specs say, one request per spec (a request's partition count,
 * replication factor and configs apply to all of its topics), and returns once every partition
 * has a leader: the broker answers the creation before that, and a write would be refused.
 */
export async function createTopics(admin: Admin, specs: readonly TopicSpec[]): Promise<void> {
  for (const s of specs) {
    await admin.createTopics({ topics: [s.topic], partitions: s.partitions, replicas: s.replicationFactor, configs: Object.entries(s.configs).map(([name, value]) => ({ name, value })) });
  }
  await waitForLeaders(admin, specs.map((s) => s.topic));
}
