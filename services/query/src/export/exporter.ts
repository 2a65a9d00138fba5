import type { ExportSink, ExportSource, PositionStore } from './types.js';

interface ExportOptions {
  /** Events per read and per delivery. */
  batch?: number;
  /** Stop after this many events (for tests and sampling); default: until caught up. */
  maxEvents?: number;
  signal?: AbortSignal;
}

interface ExportReport {
  delivered: number;
  positions: Record<string, number>;
}

/**
 * Copies OCSF events from a source to a sink until it has caught up with the ledger. After each
 * acknowledged batch the position is saved; a crash between delivery and save redelivers that
 * batch (at least once, never lost). Consumers deduplicate on `metadata.uid`.
 */
export async function exportEvents(source: ExportSource, sink: ExportSink, positions: PositionStore, options: ExportOptions = {}): Promise<ExportReport> {
  const batch = options.batch ?? 500;
  const at = await positions.load();
  let delivered = 0;
  for (const chain of await source.chains()) {
    for (;;) {
      if (options.signal?.aborted) return { delivered, positions: at };
      const room = options.maxEvents === undefined ? batch : Math.min(batch, options.maxEvents - delivered);
      if (room <= 0) return { delivered, positions: at };
      const events = await source.read(chain, at[chain] ?? 0, room);
      if (events.length === 0) break;
      await sink.deliver(events);
      at[chain] = events[events.length - 1]!.metadata.sequence;
      await positions.save(at);
      delivered += events.length;
    }
  }
  return { delivered, positions: at };
}
