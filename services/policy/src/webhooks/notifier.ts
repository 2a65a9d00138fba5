import type { Bus, Subscription } from '../../../../core/src/bus/bus.js';
import { readSecret, type ApprovalWebhookConfig } from '../../../../core/src/config.js';
import type { Logger } from '../../../../core/src/log.js';
import { WebhookDelivery } from './delivery.js';
import { nowMicros, type AgateEvent } from '../../../../schemas/src/events.js';
import { notificationOf } from './payload.js';

/** Past this, an approver's answer or a final verdict is history, not news. */
const NEWS_MS = 60 * 60 * 1000;

interface ApprovalWebhooksOptions {
  bus: Bus;
  webhooks: readonly ApprovalWebhookConfig[];
  logger: Logger;
  /** Where the config came from, for the error naming a missing secret. */
  source: string;
  retryBaseMs?: number;
}

/**
 * Sends signed notifications about held commands to the configured receivers. It reads the
 * approval events from the bus in its own consumer group, apart from the policy service's
 * verdict path: a slow or dead receiver delays only its own queue.
 */
export class ApprovalWebhooks {
  readonly #deliveries: { events: ReadonlySet<string>; delivery: WebhookDelivery }[];
  #subscription: Subscription | undefined;

  readonly #options: ApprovalWebhooksOptions;

  constructor(options: ApprovalWebhooksOptions) {
    this.#options = options;
    // Secrets are read now, so a missing one stops startup with a precise error.
    this.#deliveries = options.webhooks.map((w, i) => {
      const what = `${options.source}: approvals.webhooks[${i}]`;
      const secret = readSecret(w.secret_env !== undefined ? { env: w.secret_env } : { file: w.secret_file! }, what);
      const delivery = new WebhookDelivery({
        url: w.url, secret, logger: options.logger, maxAttempts: w.max_attempts, queueSize: w.queue_size, timeoutMs: w.timeout_ms, retryBaseMs: options.retryBaseMs,
      });
      return { events: new Set(w.events), delivery };
    });
  }

  async start(): Promise<void> {
    if (this.#deliveries.length === 0) return;
    this.#subscription = await this.#options.bus.subscribe({
      group: 'approval-webhooks',
      types: ['ApprovalRequested', 'ApprovalDecision', 'ApprovalRefused', 'Verdict'],
      handler: async (batch) => {
        for (const event of batch) {
          if (stale(event)) continue;
          const n = notificationOf(event);
          if (n === undefined) continue;
          for (const d of this.#deliveries) if (d.events.has(n.type)) d.delivery.enqueue(n);
        }
      },
    });
  }

  async stop(): Promise<void> {
    await this.#subscription?.close();
    await Promise.all(this.#deliveries.map((d) => d.delivery.stop()));
  }
}

/**
 * A new consumer group reads the stream from its start: turning webhooks on in a running
 * deployment must not replay its whole approval history to the receiver. A request is news until
 * it expires; an answer or a final verdict for an hour.
 */
function stale(event: AgateEvent): boolean {
  const now = nowMicros();
  if (event.type === 'ApprovalRequested') return event.expires_at <= now;
  return now - event.time > NEWS_MS * 1000;
}
