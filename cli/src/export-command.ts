import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readSecret, type AgateConfig } from '../../core/src/config.js';
import { exportEvents } from '../../services/query/src/export/exporter.js';
import { HecSink } from '../../services/query/src/export/hec-sink.js';
import { KafkaSink } from '../../services/query/src/export/kafka-sink.js';
import { NdjsonFileSink, NdjsonStreamSink } from '../../services/query/src/export/ndjson-sink.js';
import { PositionFile } from '../../services/query/src/export/position-file.js';
import type { ExportSink, PositionStore } from '../../services/query/src/export/types.js';
import { ApiClient } from './api-client.js';
import { ApiExportSource } from './api-export-source.js';
import { UsageError } from './usage.js';

interface ExportFlags {
  format?: string;
  to?: string;
  brokers?: string;
  state?: string;
  follow?: boolean;
  token?: string;
  url?: string;
}

/** A position kept only in memory: `--to ndjson -` without `--state` prints everything once. */
class MemoryPositions implements PositionStore {
  #p: Record<string, number> = {};
  async load() {
    return { ...this.#p };
  }
  async save(p: Record<string, number>) {
    this.#p = { ...p };
  }
}

/** `agate export --format ocsf --to ndjson FILE|- | --to hec URL | --to kafka TOPIC`: through the running query API. */
export async function exportCommand(config: AgateConfig, rest: string[], v: ExportFlags): Promise<number> {
  if ((v.format ?? 'ocsf') !== 'ocsf') throw new UsageError('--format: only ocsf is supported');
  const destination = rest[0];
  if ((v.to !== 'ndjson' && v.to !== 'hec' && v.to !== 'kafka') || destination === undefined) throw new UsageError('agate export needs --to ndjson FILE|-, --to hec URL or --to kafka TOPIC');
  const api = await ApiClient.fromConfig(config, v.token, v.url);
  let sink: ExportSink;
  const stop = new AbortController();
  if (v.to === 'hec') {
    const ref = config.query.export.hec_token;
    const token = ref !== undefined ? readSecret(ref, 'query.export.hec_token') : process.env.AGATE_HEC_TOKEN;
    if (token === undefined) throw new Error('the HEC token is missing: set query.export.hec_token or AGATE_HEC_TOKEN');
    sink = new HecSink({ url: destination, token, signal: stop.signal, maxAttempts: v.follow ? Number.POSITIVE_INFINITY : 10 });
  } else if (v.to === 'kafka') {
    const bus = config.bus.kind === 'kafka' ? config.bus : undefined;
    const brokers = v.brokers !== undefined ? v.brokers.split(',').map((b) => b.trim()).filter((b) => b !== '') : bus?.brokers;
    if (brokers === undefined || brokers.length === 0) throw new UsageError('--to kafka needs --brokers HOST:PORT[,…] (or a config with bus.kind: kafka)');
    sink = new KafkaSink({
      brokers, topic: destination, partitions: bus?.partitions ?? 1, replicationFactor: bus?.replication_factor ?? 1, clientId: `agate-export-${config.instance_id}`,
      signal: stop.signal, maxAttempts: v.follow ? Number.POSITIVE_INFINITY : 10,
    });
  } else {
    sink = destination === '-' ? new NdjsonStreamSink(process.stdout) : await NdjsonFileSink.open(destination);
  }
  const key = createHash('sha256').update(`${v.to}:${destination}`).digest('hex').slice(0, 16);
  const positions: PositionStore =
    v.state !== undefined ? new PositionFile(v.state) : destination === '-' ? new MemoryPositions() : new PositionFile(join(config.data_dir, 'export', `${v.to}-${key}.json`));
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let total = 0;
  try {
    do {
      const r = await exportEvents(new ApiExportSource(api), sink, positions, { signal: stop.signal });
      total += r.delivered;
      if (v.follow && !stop.signal.aborted) await sleep(1000, undefined, { signal: stop.signal }).catch(() => undefined);
    } while (v.follow && !stop.signal.aborted);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await sink.close();
  }
  process.stderr.write(`agate export: ${total} OCSF events delivered to ${sink.name}\n`);
  return 0;
}
