import { open, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { OcsfEvent } from '../ocsf/map.js';
import type { ExportSink } from './types.js';

/** OCSF events as NDJSON appended to a file; a batch counts as delivered once fsynced. */
export class NdjsonFileSink implements ExportSink {
  readonly name: string;

  private constructor(private readonly file: FileHandle, path: string) {
    this.name = `ndjson:${path}`;
  }

  static async open(path: string): Promise<NdjsonFileSink> {
    return new NdjsonFileSink(await open(path, 'a', 0o600), path);
  }

  async deliver(events: readonly OcsfEvent[]): Promise<void> {
    await this.file.appendFile(events.map((e) => JSON.stringify(e) + '\n').join(''));
    await this.file.sync();
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

/** OCSF events as NDJSON on a stream (stdout); delivered once the stream has taken the bytes. */
export class NdjsonStreamSink implements ExportSink {
  readonly name = 'ndjson:stream';

  constructor(private readonly out: Writable) {}

  deliver(events: readonly OcsfEvent[]): Promise<void> {
    const text = events.map((e) => JSON.stringify(e) + '\n').join('');
    return new Promise((resolve, reject) => {
      // The write callback fires once the data is handed on; waiting for it is the backpressure.
      this.out.write(text, (err) => (err ? reject(err) : resolve()));
    });
  }

  async close(): Promise<void> {}
}
