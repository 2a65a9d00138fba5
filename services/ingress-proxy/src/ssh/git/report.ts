import type { PushRequest } from './push-request.js';

/** Payload bytes per side-band packet: 65520 for side-band-64k, 1000 for side-band, less the header and band byte. */
const BAND_PAYLOAD = { 'side-band-64k': 65515, 'side-band': 995 } as const;

/**
 * What receive-pack would answer had it rejected every ref itself (report-status): `unpack ok`,
 * then `ng <ref> <reason>` per command, then a flush — inside side-band channel 1 when the
 * client asked for side-band, followed by the outer flush. git prints each as
 * `! [remote rejected] <ref> (<reason>)`. A client that asked for no report gets nothing here
 * (it is told on stderr instead).
 */
export function refusalReport(request: PushRequest, reason: string): Buffer | undefined {
  const caps = request.capabilities;
  if (!caps.includes('report-status') && !caps.includes('report-status-v2')) return undefined;
  const oneLine = reason.replace(/[\r\n]+/g, ' ').slice(0, 900);
  const report = Buffer.concat([
    pkt(Buffer.from('unpack ok\n')),
    ...request.commands.map((c) => pkt(Buffer.from(`ng ${c.ref} ${oneLine}\n`))),
    Buffer.from('0000'),
  ]);
  const band = caps.includes('side-band-64k') ? 'side-band-64k' : caps.includes('side-band') ? 'side-band' : undefined;
  if (band === undefined) return report;
  const packets: Buffer[] = [];
  for (let at = 0; at < report.length; at += BAND_PAYLOAD[band]) {
    packets.push(pkt(Buffer.concat([Buffer.from([1]), report.subarray(at, at + BAND_PAYLOAD[band])])));
  }
  return Buffer.concat([...packets, Buffer.from('0000')]);
}

/** A pkt-line: four hex digits of length, counting themselves, then the payload. */
export function pkt(payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from((payload.length + 4).toString(16).padStart(4, '0')), payload]);
}
