import type { OcsfEvent } from '../ocsf/map.js';

/** Ledger records, mapped to OCSF, in ledger order per chain. */
export interface ExportSource {
  chains(): Promise<string[]>;
  /** Events completed after `afterSeq` on one chain, at most `limit`, ordered by position. */
  read(chainId: string, afterSeq: number, limit: number): Promise<OcsfEvent[]>;
}

/**
 * A destination for OCSF events. `deliver` resolves only once the destination has acknowledged
 * the whole batch (durably written, or answered 2xx); only then does the exporter move its
 * position, so every event is delivered at least once.
 *
 * Implemented: NDJSON (file or stream), Splunk HEC and a Kafka topic for connectors.
 */
export interface ExportSink {
  readonly name: string;
  deliver(events: readonly OcsfEvent[]): Promise<void>;
  close(): Promise<void>;
}

/** The last acknowledged position per chain, kept durably between runs. */
export interface PositionStore {
  load(): Promise<Record<string, number>>;
  save(positions: Record<string, number>): Promise<void>;
}
