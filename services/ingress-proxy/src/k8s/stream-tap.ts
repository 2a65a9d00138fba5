import type { Response } from '../../../../schemas/src/events.js';
import type { Command } from '../../../../schemas/src/events.js';
import { ChannelReader, chosenProtocol } from './channels.js';
import type { K8sRecording } from './recording.js';
import type { KubeSession } from './session.js';
import { StreamRecording } from './stream-recording.js';
import type { StreamTap } from './upgrade.js';

/** A frame larger than this ends the stream: it is held whole before it is forwarded. kubectl sends at most 32 KiB. */
const MAX_STREAM_FRAME = 1024 * 1024;

/** How often a stream's output held back is published. */
const FLUSH_MS = 1000;

interface ChannelTap extends StreamTap {
  /** Stops the periodic flush; the totals per channel for the closing Response. */
  finish(): Pick<Response, 'columns' | 'sample' | 'rows'>;
}

/**
 * The tap of an exec or attach over WebSocket (upgrade.ts): both directions read channel by
 * channel (channels.ts) and recorded (stream-recording.ts), the client's messages before they
 * are forwarded.
 */
export function channelTap(session: KubeSession, command: Command, recording: K8sRecording, offered: readonly string[]): ChannelTap {
  const rec = new StreamRecording({
    command, audit: recording.audit, valueChars: recording.valueChars,
    sink: { emit: (e) => session.events.emit(e), emitLogged: (e) => void session.events.emitLogged(e) },
  });
  const up = new ChannelReader(true, MAX_STREAM_FRAME);
  const down = new ChannelReader(false, MAX_STREAM_FRAME);
  const timer = setInterval(() => rec.flush(), FLUSH_MS);
  timer.unref();
  return {
    accept(headText) {
      const chosen = chosenProtocol(headText, offered);
      return chosen.ok ? undefined : chosen.why;
    },
    async up(chunk) {
      const c = up.push(chunk);
      await rec.input(c.data);
      return c.forward;
    },
    down(chunk) {
      const c = down.push(chunk);
      rec.output(c.data);
      return c.forward;
    },
    finish() {
      clearInterval(timer);
      return rec.summary();
    },
  };
}
