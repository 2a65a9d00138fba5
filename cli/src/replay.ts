import type { SessionRow, TimelineEvent } from '../../services/query/src/queries.js';

/**
 * A session as a person reads it: each statement with its offset from the session start, the
 * verdict (and rule), then what came back. Results are the recorded, already-masked summary.
 */
export function renderReplay(session: SessionRow, events: readonly TimelineEvent[]): string {
  const start = Date.parse(session.opened_at.replace(' ', 'T') + 'Z');
  const offset = (t: string) => `+${((Date.parse(t.replace(' ', 'T') + 'Z') - start) / 1000).toFixed(3).padStart(8)}s`;
  const out = [
    `session ${session.session_id}  ${session.protocol}://${session.target}`,
    `identity ${session.subject}  (issuer ${session.issuer})  from ${session.client_address}`,
    `opened ${session.opened_at} UTC  ${session.closed_at ? `closed ${session.closed_at} UTC` : '(still open)'}  ${session.commands} commands, ${session.denied} denied`,
    '',
  ];
  for (const e of events) {
    switch (e.kind) {
      case 'command':
        out.push(`${offset(e.time)}  > ${indent(e.text ?? '')}`);
        break;
      case 'verdict':
        out.push(`${' '.repeat(11)}  ${e.decision === 'allow' ? 'allowed' : (e.decision ?? '?').toUpperCase()}${e.rule_id ? ` by rule ${e.rule_id}` : ''}${e.decision !== 'allow' && e.reason ? `: ${e.reason}` : ''}`);
        break;
      case 'approval':
        out.push(`${' '.repeat(11)}  approval: ${e.decision ?? '?'} by ${e.approver ?? '?'}`);
        break;
      case 'response': {
        const took = e.duration_us === null ? '' : ` in ${(e.duration_us / 1000).toFixed(1)} ms`;
        const what = e.status === 'ok' ? `${e.command_tag ?? 'ok'}, ${e.rows ?? 0} rows` : `${e.status}${e.error_code ? ` ${e.error_code}` : ''}${e.reason ? `: ${e.reason}` : ''}`;
        out.push(`${' '.repeat(11)}  < ${what}${took}`, '');
        break;
      }
    }
  }
  return out.join('\n');
}

function indent(text: string): string {
  return text.replace(/\n/g, '\n' + ' '.repeat(15));
}
