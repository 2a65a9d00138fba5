import { randomUUID } from 'node:crypto';
import type { Client, Connection } from 'ssh2';
import type { Bus } from '../../core/src/bus/bus.js';
import { parseConfig } from '../../core/src/config.js';
import { silentLogger } from '../../core/src/log.js';
import type { Identity } from '../../schemas/src/events.js';
import { Masker } from '../../services/ingress-proxy/src/masking/masker.js';
import { SessionEvents } from '../../services/ingress-proxy/src/session-events.js';
import { SshGate } from '../../services/ingress-proxy/src/ssh/gate.js';
import { FakeConnection, FakeUpstream } from './fake-ssh2.js';
import type { PolicyBus } from './policy-bus.js';

/*
 * What the SSH proxy's unit tests share: a policy (deny `rm`, mask `cat`, forwarding only for
 * the tunneler), two identities, and a real gate on a PolicyBus.
 */
export const SSH_UNIT_POLICY = `identity: { dev_issuer: { enabled: true } }
masking: { sets: { default: { detectors: [jwt] }, pii: { columns: [email], detectors: [email] } } }
policy:
  default: allow
  rules:
    - { id: no-rm, action: deny, message: deleting files needs a human, match: { protocols: [ssh], shell: { commands: [rm] } } }
    - { id: mask-cat, action: allow, mask_client: pii, match: { protocols: [ssh], shell: { commands: [cat] } } }
    - { id: tunnel-for-tunnelers, action: allow, match: { protocols: [ssh], claims: { sub: 'repo:acme/tunnel*' }, ssh: { requests: [direct-tcpip, tcpip-forward, auth-agent] } } }
`;

export const APP: Identity = { issuer: 'https://issuer.test', subject: 'repo:acme/app:ref:refs/heads/main', claims: {} };
export const TUNNELER: Identity = { issuer: 'https://issuer.test', subject: 'repo:acme/tunnel:ref:refs/heads/main', claims: {} };

/** Generous: the first shell parse of a fresh policy engine can take seconds on a busy machine. */
const VERDICT_TIMEOUT_MS = 30_000;

/** The audit masker of SSH_UNIT_POLICY (it masks JWTs). */
export function auditMasker(): Masker {
  return new Masker('default', parseConfig(SSH_UNIT_POLICY, 'ssh-unit.yaml').masking.sets.default!);
}

interface GateOptions {
  maxChannels?: number;
  /** Replaces pb's own bus for the decisions (see `notingBus`). */
  bus?: Bus;
  /** The client's connection (default: a FakeConnection). */
  client?: Connection;
  /** Agate's connection to the target (default: a FakeUpstream). */
  upstream?: Promise<Client>;
}

/** A gate on `pb`, logged in as `identity` on target "box" (not logged in when undefined). */
export function gateOn(pb: PolicyBus, identity: Identity | undefined, options: GateOptions = {}): { gate: SshGate; events: SessionEvents } {
  const { maxChannels, bus = pb.bus, client = new FakeConnection().asConnection(), upstream = Promise.resolve(new FakeUpstream().asClient()) } = options;
  const events = new SessionEvents(pb.bus, silentLogger);
  const gate = new SshGate({ client, sessionId: randomUUID(), proxyId: 'unit', bus, verdictTimeoutMs: VERDICT_TIMEOUT_MS, events, log: silentLogger, audit: auditMasker(), maxChannels });
  if (identity !== undefined) gate.open(identity, 'box', upstream);
  return { gate, events };
}

/**
 * pb's bus, noting in `timeline` each command the proxy asks a verdict for (`asked <text>`) and
 * the answer it got (`verdict <decision>` or `timeout`), so a test can put other steps in order.
 */
export function notingBus(pb: PolicyBus, timeline: string[]): Bus {
  return {
    publish: (e) => pb.bus.publish(e),
    requestVerdict: async (command, deadlineMs, options) => {
      timeline.push(`asked ${command.text}`);
      const outcome = await pb.bus.requestVerdict(command, deadlineMs, options);
      timeline.push(outcome.kind === 'verdict' ? `verdict ${outcome.verdict.decision}` : 'timeout');
      return outcome;
    },
    subscribe: (o) => pb.bus.subscribe(o),
    close: async () => undefined,
  };
}
