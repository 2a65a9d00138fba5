// node-postgres logged in to one of Agate's PostgreSQL listeners the way an agent does.
import pg from 'pg';

interface AgentClientOptions {
  port: number;
  /** The agent's OIDC token, sent as the password. */
  token: string;
  host?: string;
  database?: string;
  connectionTimeoutMillis?: number;
  /** Where the client is registered before it connects, so a teardown ends it even if login failed. */
  track?: pg.Client[];
}

/**
 * Connects as user `agent` to database appdb (unless named). An 'error' listener is attached
 * first: a session the proxy ends (a drain, a kill, a refusal) must not crash the test process,
 * and the failure is seen where the statement is awaited.
 */
export async function connectAgent(opts: AgentClientOptions): Promise<pg.Client> {
  const { port, token, host = '127.0.0.1', database = 'appdb', connectionTimeoutMillis, track } = opts;
  const client = new pg.Client({ host, port, database, user: 'agent', password: token, connectionTimeoutMillis });
  client.on('error', () => undefined);
  track?.push(client);
  await client.connect();
  return client;
}
