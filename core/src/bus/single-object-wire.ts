import type { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent } from '../../../schemas/src/events.js';
import type { WireCodec } from './wire.js';

/** Avro single-object encoding on the wire: no registry needed, every message self-describing. */
export class SingleObjectWire implements WireCodec {
  readonly carriesCodecEncoding = true;

  constructor(private readonly codec: EventCodec) {}

  async init(): Promise<void> {}

  encode(event: AgateEvent): Buffer {
    return this.codec.encode(event);
  }

  decode(bytes: Buffer): AgateEvent {
    return this.codec.decode(bytes);
  }
}
