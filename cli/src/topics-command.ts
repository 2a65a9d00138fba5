import type { AgateConfig } from '../../core/src/config.js';
import { describeKafkaError, withAdmin } from '../../core/src/bus/kafka-client.js';
import { provisionTopics, topicSpecs, type TopicStatus } from '../../core/src/bus/kafka-topics.js';
import { AgateError, ConfigError, ErrorCode } from '../../core/src/errors.js';

/**
 * `agate topics --config F [--check] [--json]`: creates the Kafka topics the config names with its
 * partitions, replication factor, min.insync.replicas and retention, or with `--check` only
 * compares. Exit 0 when every topic matches (or was created), 1 when one is missing or differs.
 */
export async function topicsCommand(config: AgateConfig, checkOnly: boolean, json: boolean): Promise<number> {
  const bus = config.bus;
  if (bus.kind !== 'kafka') throw new ConfigError(`${config.source}: bus.kind is local; agate topics provisions Kafka topics (bus.kind: kafka)`);
  const specs = topicSpecs({
    eventsTopic: bus.events_topic, verdictsTopic: bus.verdicts_topic, partitions: bus.partitions,
    replicationFactor: bus.replication_factor, minInsyncReplicas: bus.min_insync_replicas, retentionMs: bus.retention_ms,
  });
  const statuses: TopicStatus[] = await withAdmin({ clientId: `agate-topics-${config.instance_id}`, brokers: bus.brokers, connectTimeoutMs: 5_000, retries: 3 }, async (admin) => {
    // The client connects on its first request: ask for the brokers first, so an unreachable
    // cluster is said as such rather than as a failure of whichever step came first.
    await admin.metadata({ topics: [], forceUpdate: true }).catch((cause: unknown) => {
      throw new AgateError(ErrorCode.BUS_UNAVAILABLE, `cannot reach Kafka at ${bus.brokers.join(', ')}: ${describeKafkaError(cause)}`, { cause, retriable: true });
    });
    return provisionTopics(admin, specs, checkOnly);
  });
  if (json) console.log(JSON.stringify(statuses.map((s) => ({ ...s, spec: specs.find((p) => p.topic === s.topic) })), null, 2));
  else for (const s of statuses) console.log(describe(s, specs.find((p) => p.topic === s.topic)!));
  return statuses.every((s) => s.status === 'ok' || s.status === 'created') ? 0 : 1;
}

function describe(s: TopicStatus, spec: ReturnType<typeof topicSpecs>[number]): string {
  const shape = `${spec.partitions} partitions, replication factor ${spec.replicationFactor}, ${Object.entries(spec.configs).map(([k, v]) => `${k}=${v}`).join(', ')}`;
  switch (s.status) {
    case 'created':
      return `${s.topic}: created (${shape})`;
    case 'ok':
      return `${s.topic}: ok (${shape})`;
    case 'missing':
      return `${s.topic}: missing (run agate topics without --check to create it)`;
    case 'differs':
      return `${s.topic}: differs from the config\n${s.problems.map((p) => `  ${p}`).join('\n')}`;
  }
}
