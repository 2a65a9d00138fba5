import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { Backoff, pause } from '../../../../core/src/retry.js';
import type { OcsfEvent } from '../ocsf/map.js';
import { sizedRuns } from './fit-events.js';
import type { ExportSink } from './types.js';

interface HecOptions {
  /** The collector endpoint; a bare origin gets `/services/collector/event`. */
  url: string;
  token: string;
  /** Attempts per batch before giving up (the position stays, so a later run resumes). */
  maxAttempts?: number;
  /** The first backoff step (core/src/retry.ts); doubles per attempt, up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  timeoutMs?: number;
  sourcetype?: string;
  /** JSON bytes of events per request, under the collector's request limit (Splunk's is 1 MB by default). Default 800,000. */
  maxRequestBytes?: number;
  signal?: AbortSignal;
}

/**
 * Splunk HTTP Event Collector: one POST per batch, each event wrapped as `{"event": …}`, with
 * `Authorization: Splunk <token>`. Network errors, timeouts, 429 and 5xx are retried with
 * exponential backoff; other answers (a bad token, a malformed batch) stop the export with
 * EXPORT_DELIVERY_FAILED, since repeating them cannot succeed; so a batch is sent in requests
 * under the collector's size limit, an event longer than that with its longest texts cut
 * (fit-events.ts): an agent's long statement must not stop the export.
 */
export class HecSink implements ExportSink {
  readonly name: string;
  readonly #url: string;

  readonly #options: HecOptions;

  constructor(options: HecOptions) {
    this.#options = options;
    const u = new URL(options.url);
    if (u.pathname === '/' || u.pathname === '') u.pathname = '/services/collector/event';
    this.#url = u.toString();
    this.name = `hec:${u.origin}${u.pathname}`; // never the token
  }

  /** The batch in requests small enough for the collector, one after another. */
  async deliver(events: readonly OcsfEvent[]): Promise<void> {
    for (const run of sizedRuns(events, this.#options.maxRequestBytes ?? 800_000)) await this.#deliver(run);
  }

  async #deliver(events: readonly OcsfEvent[]): Promise<void> {
    const body = events
      .map((e) => JSON.stringify({ event: e, time: e.time / 1000, source: 'agate', sourcetype: this.#options.sourcetype ?? 'ocsf' }))
      .join('\n');
    const max = this.#options.maxAttempts ?? 10;
    const backoff = new Backoff({ firstMs: this.#options.baseDelayMs ?? 250, maxMs: this.#options.maxDelayMs ?? 30_000 });
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#post(body);
      if (outcome === 'ok') return;
      if (outcome === 'fatal' || attempt >= max) {
        throw new AgateError(ErrorCode.EXPORT_DELIVERY_FAILED, `${this.name} did not accept ${events.length} events after ${attempt} attempt(s): ${this.#last}`, { retriable: outcome !== 'fatal' });
      }
      await pause(backoff.next(), this.#options.signal);
      this.#options.signal?.throwIfAborted();
    }
  }

  async close(): Promise<void> {}

  #last = '';

  async #post(body: string): Promise<'ok' | 'retry' | 'fatal'> {
    let res: Response;
    try {
      res = await fetch(this.#url, {
        method: 'POST',
        headers: { authorization: `Splunk ${this.#options.token}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(this.#options.timeoutMs ?? 30_000),
      });
    } catch (err) {
      this.#last = `network error (${(err as Error).name})`;
      return 'retry';
    }
    const text = await res.text().catch(() => '');
    if (res.ok) {
      // HEC answers {"text":"Success","code":0}; any other code means the batch was not indexed.
      const code = safeCode(text);
      if (code === undefined || code === 0) return 'ok';
      this.#last = `HEC code ${code}`;
      return 'retry';
    }
    this.#last = `HTTP ${res.status}`;
    return res.status === 429 || res.status === 408 || res.status >= 500 ? 'retry' : 'fatal';
  }
}

function safeCode(text: string): number | undefined {
  try {
    const v = (JSON.parse(text) as { code?: unknown }).code;
    return typeof v === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}
