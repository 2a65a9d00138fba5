import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Bus } from '../../../core/src/bus/bus.js';
import type { ProxyLeases } from '../../../core/src/bus/leases.js';
import { LOCAL_STREAM } from '../../../core/src/bus/local-bus.js';
import type { AgateConfig } from '../../../core/src/config.js';
import type { OnStarted } from '../../../core/src/lifecycle.js';
import type { Logger } from '../../../core/src/log.js';
import type { Tracing } from '../../../core/src/tracing/tracing.js';
import type { Store } from '../../../core/src/store/store.js';
import type { EventCodec } from '../../../schemas/src/codec.js';
import { directorySink, webhookSink, type CheckpointSink } from './checkpoint-sink.js';
import { loadOrCreateSigner } from './keys.js';
import type { CheckpointSources } from './known-checkpoints.js';
import { LedgerService, type LedgerOptions } from './ledger.js';
import { LeaseSweeper } from './lease-sweeper.js';
import { parseVerifierKey, verifierKey, type NoteSigner } from './note.js';

/** What the ledger reads from the config. */
type LedgerSlice = Pick<AgateConfig, 'ledger' | 'bus' | 'data_dir'>;

interface LedgerShared {
  bus: Bus;
  store: Store;
  codec: EventCodec;
  logger: Logger;
  /** Proxies' leases (Kafka only): the ledger closes the sessions of proxies that died. */
  leases: ProxyLeases | undefined;
  /** Fills the tables derived from the ledger's inserts (the query service's session tables). */
  refillDerived: NonNullable<LedgerOptions['refillDerived']>;
  onStarted: OnStarted;
  /** Trace export, when configured (telemetry.otlp). */
  tracing?: Tracing;
}

/** Starts the ledger of this config, and on Kafka the sweeper of dead proxies' sessions. */
export async function ledgerFromConfig(config: LedgerSlice, shared: LedgerShared): Promise<LedgerService> {
  const logger = shared.logger.child({ component: 'ledger' });
  const { checkpoint } = config.ledger;
  const sinks: CheckpointSink[] = [];
  if (checkpoint.dir !== undefined) sinks.push(directorySink(checkpoint.dir));
  if (checkpoint.webhook !== undefined) sinks.push(webhookSink(checkpoint.webhook, logger));
  const { bus, store, codec } = shared;
  const ledger = new LedgerService({
    bus, store, codec, logger, signer: ledgerSigner(config, config.bus.kind !== 'kafka'),
    // The embedded log is one stream; on Kafka every partition is a chain of its own.
    chainId: config.bus.kind === 'local' ? LOCAL_STREAM.stream : `${config.bus.events_topic}-0`,
    checkpoints: { everyEvents: checkpoint.every_events, everyMs: checkpoint.every_ms, sinks },
    dedupWindow: config.ledger.dedup_window, retentionDays: config.ledger.retention_days,
    refillDerived: shared.refillDerived,
    tracing: shared.tracing,
    pendingRefillsFile: join(config.data_dir, 'ledger', 'unrefilled.json'),
  });
  await ledger.start();
  shared.onStarted(ledger);
  if (shared.leases !== undefined && config.bus.kind === 'kafka') {
    // The ledger closes the sessions of proxies that died (lease-sweeper.ts says why the ledger).
    const lease = config.bus.proxy_lease_ms;
    const sweeper = new LeaseSweeper({ leases: shared.leases, bus, store, logger: logger.child({ component: 'leases' }), expiryMs: lease, everyMs: Math.min(5_000, Math.max(500, lease / 2)) });
    sweeper.start();
    shared.onStarted(sweeper);
  }
  return ledger;
}

/**
 * The checkpoint signing key named by the config, created on first use unless `create` is false
 * (a ledger on the Kafka bus: its instances must share one key, made once, see loadOrCreateSigner).
 */
export function ledgerSigner(config: Pick<AgateConfig, 'ledger'>, create = true): NoteSigner {
  return loadOrCreateSigner(config.ledger.signing_key, config.ledger.origin, create);
}

/**
 * Where verification finds signed checkpoints by itself: the configured checkpoint directory,
 * trusted under the ledger's own key (when this host has it; a query service elsewhere trusts
 * none and checks the chain alone).
 */
export function checkpointSources(config: Pick<AgateConfig, 'ledger'>): CheckpointSources {
  return {
    verifiers: existsSync(config.ledger.signing_key) ? [parseVerifierKey(verifierKey(ledgerSigner(config)))] : [],
    dirs: config.ledger.checkpoint.dir === undefined ? [] : [config.ledger.checkpoint.dir],
  };
}
