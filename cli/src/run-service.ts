import type { AddressInfo } from 'node:net';
import { type AgateConfig } from '../../core/src/config.js';
import { assertConfigFiles } from '../../core/src/config-files.js';
import { DEV_ISSUER } from '../../core/src/identity/dev-issuer.js';
import { createLogger, type Logger } from '../../core/src/log.js';
import { OpsServer } from '../../core/src/ops/ops-server.js';
import { splitHostPort } from '../../core/src/host-port.js';
import { READY, Readiness } from '../../core/src/ops/readiness.js';
import { ALL_ROLES, startServices, type Role } from './components.js';

/**
 * `agate start|proxy|policy|ledger|query`: runs the roles until SIGTERM or SIGINT, then drains
 * (the proxies stop accepting; statements in flight finish, bounded by `ops.drain_timeout_ms`),
 * stops every service (events flushed to the bus) and returns exit code 0, or 1 when the ledger
 * stopped short of the log's end (the store trails the log until the next start). A second signal
 * during the drain stops at once. The ops listener answers throughout: `/readyz` says
 * "starting", then ready, then "draining", so an orchestrator sends no new clients meanwhile.
 */
export async function runServices(config: AgateConfig, roles: readonly Role[]): Promise<number> {
  // Before any listener opens: a missing or unusable file stops the start with what `agate check` says.
  const notYet = assertConfigFiles(config, roles);
  const logger = createLogger(config.log_level, { instance: config.instance_id });
  for (const p of notYet) logger.warn('a file the configuration names cannot be used yet', { key: p.key, path: p.path, problem: p.problem });
  if (config.identity.dev_issuer.enabled && (roles.includes('proxy') || roles.includes('query'))) {
    logger.warn('the dev-only token issuer is ON: anyone with access to the data directory can mint tokens; never enable it in production', { issuer: DEV_ISSUER });
  }
  const all = roles.length === ALL_ROLES.length;
  const name = all ? 'agate' : `agate ${roles[0]}`;
  // The process's one readiness: every service reports into it, the ops listener and the query API serve it.
  const readiness = new Readiness();
  readiness.set('process', { ready: false, reason: 'starting' });
  const ops = config.ops.listen === undefined ? undefined : await opsListener(readiness, config.ops.listen, logger);
  let running;
  try {
    running = await startServices(config, roles, logger, readiness);
  } catch (err) {
    await ops?.close();
    throw err;
  }
  readiness.set('process', READY);
  // Listening before "started" is said: whoever reads that line may signal at once, and a
  // SIGTERM with no listener yet takes the default action, killing the process with the ledger
  // still behind the log (seen as a store trailing the log after `start` then an instant stop).
  const stopRequested = signalled(logger);
  logger.info(`${name} started`, {
    mode: all ? config.bus.kind === 'local' ? 'embedded' : 'all-in-one' : roles[0],
    postgres: running.postgres === undefined ? undefined : `${running.postgres.address}:${running.postgres.port}`,
    ssh: running.ssh === undefined ? undefined : `${running.ssh.address}:${running.ssh.port}`,
    kubernetes: running.kubernetes === undefined ? undefined : Object.fromEntries(Object.entries(running.kubernetes).map(([n, a]) => [n, `${a.address}:${a.port}`])),
    query_api: running.api === undefined ? undefined : `${config.query.tls === undefined ? 'http' : 'https'}://${running.api.address}:${running.api.port}`,
    ops: ops === undefined ? undefined : `http://${ops.at.address}:${ops.at.port}`,
    bus: config.bus.kind,
    store: config.store.kind,
    data_dir: config.data_dir,
    targets: roles.includes('proxy') ? config.targets.map((t) => t.name) : undefined,
  });
  await stopRequested;
  readiness.set('process', { ready: false, reason: 'draining' });
  const drainStarted = Date.now();
  await Promise.race([running.drain(config.ops.drain_timeout_ms), signalled(logger, 'stopping without waiting for the drain')]);
  logger.info('drain finished', { ms: Date.now() - drainStarted });
  const { storeTrails } = await running.stop();
  await ops?.close();
  readiness.remove('process');
  if (storeTrails !== undefined) {
    // Never silent: an analyst querying the store now would miss these events.
    logger.error('stopped with the store behind the event log: the ledger did not store every event before the stop (see the errors above); they wait in the log and are stored at the next start', {
      events: storeTrails.events, log_position: storeTrails.position, log_end: storeTrails.end,
    });
    return 1;
  }
  logger.info('stopped');
  return 0;
}

/** The ops listener (/healthz, /readyz, /metrics) over the process's readiness. */
async function opsListener(readiness: Readiness, listen: string, logger: Logger): Promise<{ at: AddressInfo; close(): Promise<void> }> {
  const server = new OpsServer(readiness, logger.child({ component: 'ops' }));
  const { host, port } = splitHostPort(listen);
  return { at: await server.listen(host, port), close: () => server.close() };
}

/** Resolves on the next SIGTERM or SIGINT. */
function signalled(logger: Logger, message = 'stopping'): Promise<void> {
  return new Promise((resolve) => {
    const on = (signal: string) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      logger.info(message, { signal });
      resolve();
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
