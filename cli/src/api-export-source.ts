import type { OcsfEvent } from '../../services/query/src/ocsf/map.js';
import type { ExportSource } from '../../services/query/src/export/types.js';
import type { ApiClient } from './api-client.js';

/** OCSF events from a running Agate's query API (the embedded store is locked by that process). */
export class ApiExportSource implements ExportSource {
  constructor(private readonly api: ApiClient) {}

  async chains(): Promise<string[]> {
    return (await this.api.get<{ chains: string[] }>('/v1/export/chains')).chains;
  }

  async read(chainId: string, afterSeq: number, limit: number): Promise<OcsfEvent[]> {
    const q = new URLSearchParams({ chain: chainId, after: String(afterSeq), limit: String(limit) });
    const text = await this.api.request('GET', `/v1/export/ocsf?${q}`);
    return text.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as OcsfEvent);
  }
}
