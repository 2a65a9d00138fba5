import { nowMicros, type Verdict } from '../../../schemas/src/events.js';

/** What every proxy tells a client whose command waits for approval, before its own framing. */
interface HoldNotice {
  /** `Agate is holding this statement for approval <id> (rule <rule>): <reason>` */
  headline: string;
  /** Seconds until the hold expires and the command is refused. */
  secondsLeft: number;
}

export function holdNotice(v: Verdict, what: 'statement' | 'command'): HoldNotice {
  return {
    headline: `Agate is holding this ${what} for approval ${v.approval_id} (rule ${v.rule_id ?? 'default'}): ${v.reason}`,
    secondsLeft: v.hold_expires_at === null ? 0 : Math.max(0, Math.round((v.hold_expires_at - nowMicros()) / 1e6)),
  };
}
