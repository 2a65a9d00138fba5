/**
 * What every Kafka client Agate opens shares: the connection settings (brokers, TLS, SASL,
 * timeouts), the partitioner, and how the client's errors are read. One place, so the bus, the
 * topics command and the export sink connect and fail alike.
 */
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Admin, GenericError, MultipleErrors, UserError, compatibilityPartitioner, stringSerializer, type BaseOptions, type ClusterMetadata, type MessageToProduce, type SASLOptions } from '@platformatic/kafka';

export interface KafkaConnection {
  brokers: string[];
  clientId: string;
  /** TLS to the brokers; the server's certificate and name are verified. */
  tls?: TlsOptions;
  /** SASL login (SCRAM or PLAIN) to the brokers. */
  sasl?: { mechanism: 'scram-sha-512' | 'scram-sha-256' | 'plain'; username: string; password: string };
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Retries of a failed request inside the client, before its caller sees the error. */
  retries?: number;
}

const SASL_MECHANISMS = { 'scram-sha-512': 'SCRAM-SHA-512', 'scram-sha-256': 'SCRAM-SHA-256', plain: 'PLAIN' } as const;

/** The client options for a connection. */
export function clientOptions(c: KafkaConnection): BaseOptions {
  return {
    clientId: c.clientId,
    bootstrapBrokers: c.brokers,
    connectTimeout: c.connectTimeoutMs ?? 3_000,
    requestTimeout: c.requestTimeoutMs ?? 10_000,
    timeout: c.requestTimeoutMs ?? 10_000,
    retries: c.retries ?? 3,
    retryDelay: 100,
    ...(c.tls === undefined ? {} : { tls: c.tls }),
    ...(c.sasl === undefined ? {} : { sasl: { mechanism: SASL_MECHANISMS[c.sasl.mechanism], username: c.sasl.username, password: c.sasl.password } satisfies SASLOptions }),
  };
}

/** Keys, header names and values are strings; values are the wire codec's bytes. */
export const STRING_SERDE = { key: stringSerializer, headerKey: stringSerializer, headerValue: stringSerializer } as const;

/**
 * Java's (and kafkajs's DefaultPartitioner's) choice of partition for a keyed record:
 * murmur2(key) made positive, modulo the partition count (the client takes the modulo). Kept
 * identical so a session's records stay in the partition they were in before the client switch:
 * the ledger's chains and a session's order follow the partition.
 */
export function keyPartitioner<Value>(message: MessageToProduce<string, Value, string, string>, key: Buffer | undefined): number {
  return compatibilityPartitioner(message, key);
}

/**
 * A Kafka error as one precise line: the client nests the broker's answer (a per-partition error
 * code and its description) under "Producing messages failed." or "Cannot connect to any
 * broker.", and the socket's cause (refused, a certificate) under that; all of it is kept.
 */
export function describeKafkaError(err: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  const walk = (e: unknown): void => {
    if (e === null || e === undefined || seen.has(e)) return;
    seen.add(e);
    if (!(e instanceof Error)) return void parts.push(String(e));
    const x = e as Error & { apiCode?: number; apiId?: string; serverErrorMessage?: string | null };
    const text = x.apiId !== undefined ? `${x.apiId}: ${x.message}${x.serverErrorMessage ? ` (${x.serverErrorMessage})` : ''}` : x.message;
    if (text !== '' && !parts.includes(text)) parts.push(text);
    if (MultipleErrors.isMultipleErrors(x)) for (const inner of (x as unknown as AggregateError).errors) walk(inner);
    walk(x.cause);
  };
  walk(err);
  return parts.join(': ');
}

/**
 * Whether retrying may help: the broker or the network said so (not yet up, no leader yet, a
 * timeout). An authentication or certificate failure, or a refused request, is not transient.
 */
export function isTransientKafkaError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if ((err as { retriable?: boolean }).retriable === true) return true;
  if (!GenericError.isGenericError(err)) return false;
  const found = err as GenericError;
  // The broker's UNKNOWN_TOPIC_OR_PARTITION, which the client turns into a non-retriable
  // "Unknown topic <name>." with no code: a topic another process created a moment ago is
  // unknown until the metadata reaches every broker (seen as `agate ledger` failing to start
  // beside the one that created the topics, on a loaded machine). A topic that stays missing
  // still fails once the caller's deadline passes.
  if (found.findBy('code', UserError.code) !== null && /^Unknown topic .*\.$/.test(err.message)) return true;
  if (found.findBy('code', 'PLT_KFK_AUTHENTICATION') !== null) return false;
  if (/certificate|self[- ]signed|SSL|TLS/i.test(describeKafkaError(err))) return false;
  return found.findBy('canRetry', true) !== null || found.findBy('code', 'PLT_KFK_NETWORK') !== null || found.findBy('code', 'PLT_KFK_TIMEOUT') !== null;
}

/** Runs `work` with an admin client of the connection, closing it afterwards whatever happens. */
export async function withAdmin<T>(c: KafkaConnection, work: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin(clientOptions(c));
  try {
    return await work(admin);
  } finally {
    await admin.close().catch(() => undefined);
  }
}

/**
 * Waits until every partition of `topics` has a leader: a topic is usable for writes only then,
 * and the broker answers its creation before that (what kafkajs's `waitForLeaders` did).
 */
export async function waitForLeaders(admin: Admin, topics: readonly string[], timeoutMs = 30_000): Promise<ClusterMetadata> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let metadata: ClusterMetadata | undefined;
    try {
      metadata = await admin.metadata({ topics: [...topics], forceUpdate: true });
    } catch (err) {
      if (!isTransientKafkaError(err) || Date.now() > end) throw err;
    }
    if (metadata !== undefined && topics.every((t) => metadata.topics.get(t)?.partitions.every((p) => p.leader >= 0) === true)) return metadata;
    if (Date.now() > end) throw new Error(`the partitions of ${topics.join(', ')} have no leader after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
