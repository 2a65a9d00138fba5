import { visibleText } from '../../core/src/visible-text.js';
import type { SessionRow, TimelineEvent } from '../../services/query/src/queries.js';
import type { Recording } from '../../services/query/src/recording.js';

/**
 * A session as a person reads it: each statement with its offset from the session start, the
 * verdict (and rule), then what came back. Results are the recorded, already-masked summary.
 * Invisible and control characters anywhere in it (the agent's text, an error quoting it, the
 * terminal's output) are shown as labels, never written to the reader's terminal.
 */
export function renderReplay(session: SessionRow, events: readonly TimelineEvent[], recordings: readonly Recording[] = []): string {
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
      case 'approval_refused':
        // An attempt that was refused is not an answer: shown as what it was.
        out.push(`${' '.repeat(11)}  refused attempt to ${e.decision ?? '?'} by ${e.approver ?? '?'}: ${e.reason ?? ''}`);
        break;
      case 'notification':
        // Delivered by the target outside any statement (LISTEN/NOTIFY), already masked.
        out.push(`${offset(e.time)}  ! notification on ${e.channel ?? '?'}: ${indent(e.text ?? '')}`, '');
        break;
      case 'response': {
        if (e.command_tag?.startsWith('asciicast v2 part ')) break; // shown whole below
        const took = e.duration_us === null ? '' : ` in ${(e.duration_us / 1000).toFixed(1)} ms`;
        const what = e.status === 'ok' ? `${e.command_tag ?? 'ok'}, ${e.rows ?? 0} rows` : `${e.status}${e.error_code ? ` ${e.error_code}` : ''}${e.reason ? `: ${e.reason}` : ''}`;
        out.push(`${' '.repeat(11)}  < ${what}${took}`, '');
        break;
      }
    }
  }
  for (const r of recordings) {
    const input = r.events.filter((e) => e[1] === 'i').length;
    out.push(`terminal of shell ${r.command_id} (${r.header.width}x${r.header.height}, ${r.events.length} events, ${input} of them input${r.truncated ? ', truncated' : ''}):`, '');
    out.push(terminalText(r));
  }
  return visibleText(out.join('\n'));
}

/** What the terminal showed, as plain text: output events joined, escape sequences dropped. */
function terminalText(recording: Recording): string {
  const raw = recording.events.filter((e) => e[1] === 'o').map((e) => e[2]).join('');
  return raw
    .replace(/\x1b\[[0-?]*[ -\/]*[@-~]/g, '') // CSI (colours, cursor movement)
    .replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, '') // OSC (window titles)
    .replace(/\x1b[@-_]/g, '')
    .replace(/\r+\n/g, '\n')
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}

function indent(text: string): string {
  return text.replace(/\n/g, '\n' + ' '.repeat(15));
}
