import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { hostname } from 'node:os';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { z } from 'zod';
import { AgateError, ConfigError, ErrorCode } from './errors.js';
import { SQL_EFFECTS, type SqlEffect } from './sql/effects.js';

/*
 * The one configuration format every Agate process reads. Parsed and validated once at start;
 * everything below the CLI receives typed values. Unknown keys are errors, so a typo never
 * silently falls back to a default.
 */

const hostPort = z.string().regex(/^[^:\s]+:\d{1,5}$/, 'expected HOST:PORT, e.g. 127.0.0.1:6432');
const duration = z.number().int().positive();

const secret = z
  .strictObject({ value: z.string().optional(), env: z.string().optional(), file: z.string().optional() })
  .refine((s) => [s.value, s.env, s.file].filter((v) => v !== undefined).length === 1, 'expected exactly one of value, env, file');

/**
 * TLS to a server Agate connects to (Kafka, the schema registry, a ClickHouse server): PEM files
 * for the CA that signs the server (default: the system's CAs) and, for mutual TLS, the client's
 * certificate and key. The server's name is always checked.
 */
const clientTls = z
  .strictObject({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional(), server_name: z.string().optional() })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), 'expected both cert and key (mutual TLS) or neither');
export type ClientTlsConfig = z.infer<typeof clientTls>;

/** `kind` may be left out of a section; it then means the embedded default. */
function withKind<T extends z.ZodType>(fallback: string, schema: T) {
  return z.preprocess((v) => (v !== null && typeof v === 'object' && !('kind' in v) ? { kind: fallback, ...v } : v), schema);
}

const issuer = z.strictObject({
  issuer: z.url(),
  audience: z.union([z.string(), z.array(z.string()).nonempty()]),
  /** Defaults to the issuer's OpenID discovery document. */
  jwks_uri: z.url().optional(),
  algorithms: z.array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'])).nonempty().default(['RS256', 'ES256']),
  clock_tolerance_s: z.number().int().min(0).max(300).default(30),
  /**
   * Longest token lifetime accepted (exp − iat, or exp − now without iat). CI tokens are short:
   * GitHub Actions id-tokens live minutes, GitLab CI id-tokens until the job's timeout (1 h by
   * default), Kubernetes projected tokens 1 h by default; a token valid for days is a leaked-token
   * risk, not a CI token. Raise it for longer GitLab job timeouts.
   */
  max_token_lifetime_s: z.number().int().min(60).max(7 * 86400).default(3600),
  /** The claim that names the identity in the audit trail. */
  subject_claim: z.string().default('sub'),
});

/** Value detectors a mask set can use; see services/ingress-proxy/src/pg/masking/detectors.ts. */
export const DETECTORS = ['private_key', 'jwt', 'cloud_access_key', 'password_hash', 'card_number', 'email', 'connection_string'] as const;
export type DetectorName = (typeof DETECTORS)[number];

const maskSetName = z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'expected a lower-case mask set name such as pii');

const maskSet = z.strictObject({
  /** Column-name globs (case-insensitive); every value of a matching column is masked. */
  columns: z.array(z.string()).default([]),
  /** Detectors run over every text value; only the matching span is replaced. */
  detectors: z.array(z.enum(DETECTORS)).default([]),
});

/** `true` means the audit mask set; a name picks one of `masking.sets`. */
const maskClient = z.union([z.boolean(), maskSetName]);

/** The set used when the config names none: common secret columns and every detector. */
export const BUILTIN_MASK_SET = {
  columns: ['*password*', '*passwd*', '*secret*', '*token*', '*api_key*', '*apikey*', '*private_key*', 'card_number', 'ssn'],
  detectors: [...DETECTORS],
};

const postgresTarget = z.strictObject({
  name: z.string().regex(/^[a-zA-Z0-9_.-]+$/, 'expected a name of letters, digits, _ . -'),
  protocol: z.literal('postgres'),
  upstream: z.strictObject({
    host: z.string(),
    port: z.number().int().min(1).max(65535).default(5432),
    database: z.string(),
    user: z.string(),
    password: secret,
    /** TLS to the target: disable, require (encrypted, unverified) or verify-full (CA and host name checked). */
    tls: z
      .strictObject({ mode: z.enum(['disable', 'require', 'verify-full']).default('disable'), ca: z.string().optional() })
      .default({ mode: 'disable' }),
  }),
  labels: z.record(z.string(), z.string()).default({}),
  /** Mask what clients of this target receive (in addition to the audit copy, always masked). */
  mask_client: maskClient.default(false),
});

/** A host key as in known_hosts (`ssh-ed25519 AAAA…`) or its OpenSSH fingerprint (`SHA256:…`). */
const pinnedHostKey = z
  .string()
  .regex(/^((ssh-[a-z0-9-]+|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}|SHA256:[A-Za-z0-9+/]{43})$/, 'expected a public key such as "ssh-ed25519 AAAA…" or a fingerprint such as "SHA256:…"');

const sshTarget = z.strictObject({
  name: z.string().regex(/^[a-zA-Z0-9_.-]+$/, 'expected a name of letters, digits, _ . -'),
  protocol: z.literal('ssh'),
  upstream: z
    .strictObject({
      host: z.string(),
      port: z.number().int().min(1).max(65535).default(22),
      user: z.string(),
      /** Agate's own key for the target (OpenSSH or PEM format, unencrypted). */
      private_key_file: z.string().optional(),
      password: secret.optional(),
      /** The target's host key; a server presenting any other key is refused. */
      host_key: pinnedHostKey,
    })
    .refine((u) => (u.private_key_file === undefined) !== (u.password === undefined), 'expected exactly one of private_key_file, password'),
  labels: z.record(z.string(), z.string()).default({}),
});

/** A Kubernetes API server, reached with a kubeconfig's credential; kubectl talks to Agate's own listener. */
const kubernetesTarget = z.strictObject({
  name: z.string().regex(/^[a-zA-Z0-9_.-]+$/, 'expected a name of letters, digits, _ . -'),
  protocol: z.literal('kubernetes'),
  /** Where this target's HTTPS endpoint listens (one listener per Kubernetes target). */
  listen: hostPort,
  /** The certificate kubectl sees; `ca` (default: the certificate itself) goes into `agate kubeconfig`. */
  tls: z.strictObject({ cert: z.string(), key: z.string(), ca: z.string().optional() }),
  upstream: z.strictObject({
    /** A kubeconfig with Agate's own credential for the cluster (client certificate, token or exec plugin). */
    kubeconfig: z.string(),
    /** Default: the kubeconfig's current context. */
    context: z.string().optional(),
  }),
  labels: z.record(z.string(), z.string()).default({}),
  /** Mask what clients of this target receive (Secret data always; the set's key globs and detectors). */
  mask_client: maskClient.default(false),
  /** More fields to mask, as KIND:dotted.path with * for any key or element (e.g. ConfigMap:data.*). */
  mask_fields: z.array(z.string().regex(/^[^:\s]+:[^\s]+$/, 'expected KIND:dotted.path such as ConfigMap:data.*')).default([]),
  /** Discovery (GET /api, /apis…, /version, /openapi…) is recorded and allowed without asking policy. */
  allow_discovery: z.boolean().default(true),
  /** Request bodies beyond this are refused (413); they are digested and sampled before the verdict. */
  max_body_bytes: z.number().int().min(1024).max(1 << 30).default(8 << 20),
  /** Responses masked for the client are buffered up to this and refused beyond (fail closed). */
  max_buffer_bytes: z.number().int().min(1024).max(1 << 30).default(32 << 20),
  /** Client connections beyond this are not accepted. */
  max_connections: z.number().int().min(1).default(1000),
  /** Objects of each response kept, masked, in the Response event. */
  record_objects: z.number().int().min(0).max(1000).default(10),
  /** Each recorded body or object is cut to this many characters. */
  record_value_chars: z.number().int().min(8).max(1 << 20).default(1024),
});

const target = z.discriminatedUnion('protocol', [postgresTarget, sshTarget, kubernetesTarget]);

/**
 * What the Kubernetes proxy records in `attributes.privilege` (services/ingress-proxy/src/k8s/privilege.ts):
 * writes to roles (escalate) and bindings (bind), impersonation, service accounts, minted tokens,
 * certificate signing requests and their approval, namespace finalize, finalizer changes.
 */
export const K8S_PRIVILEGE_FACTS = ['escalate', 'bind', 'impersonate', 'serviceaccount', 'token', 'csr', 'csr-approval', 'finalize', 'finalizers'] as const;

const ruleMatch = z.strictObject({
  /** Claim name → glob (`*` any run of characters) or list of globs; all must match. */
  claims: z.record(z.string(), z.union([z.string(), z.array(z.string())])).optional(),
  targets: z.array(z.string()).optional(),
  protocols: z.array(z.enum(['postgres', 'ssh', 'kubernetes'])).optional(),
  sql: z
    .strictObject({
      /** PostgreSQL parse-node names, e.g. SelectStmt, DropStmt, TruncateStmt; nested statements count. */
      statements: z.array(z.string().regex(/^[A-Z][A-Za-z]+$/, 'expected a PostgreSQL parse-node name such as DropStmt')).nonempty().optional(),
      /** Effect classes computed from the parse tree (read, write, destroy, ddl, privilege, …; see core/src/sql/effects.ts). */
      effects: z.array(z.enum(SQL_EFFECTS as [SqlEffect, ...SqlEffect[]])).nonempty().optional(),
      /** Globs over the tables a statement names, read or written (`users`, `public.users`, `audit_*`). */
      tables: z.array(z.string().min(1)).nonempty().optional(),
      /** Globs over the tables a statement reads. */
      tables_read: z.array(z.string().min(1)).nonempty().optional(),
      /** Globs over the tables a statement changes: rows, definition, privileges or locks. */
      tables_written: z.array(z.string().min(1)).nonempty().optional(),
      /** true: only an UPDATE or DELETE with no WHERE clause matches. */
      without_where: z.literal(true).optional(),
    })
    .refine(
      (s) => Object.values(s).some((v) => v !== undefined),
      'expected at least one of statements, effects, tables, tables_read, tables_written, without_where',
    )
    .optional(),
  /**
   * Kubernetes API requests: RBAC verbs (`delete` also matches `deletecollection`, the deletion of
   * many), resource globs (`pods/exec`, `secrets`), namespace globs, and privilege facts.
   */
  kubernetes: z
    .strictObject({
      verbs: z.array(z.enum(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection', '*'])).nonempty().optional(),
      resources: z.array(z.string().min(1)).nonempty().optional(),
      namespaces: z.array(z.string()).nonempty().optional(),
      /** Matches a request that changes privileges in any of these ways (`*`: any); see K8S_PRIVILEGE_FACTS. */
      privilege: z.array(z.enum([...K8S_PRIVILEGE_FACTS, '*'])).nonempty().optional(),
    })
    .optional(),
  /**
   * SSH requests other than command lines (protocol ssh): interactive shells, file operations
   * (sftp), port and agent forwarding. Every listed condition must match.
   */
  ssh: z
    .strictObject({
      /** exec, shell, shell-line (a line typed in a shell), sftp, direct-tcpip (-L), tcpip-forward (-R), auth-agent (-A), git-push (a push's ref updates). */
      requests: z.array(z.enum(['exec', 'shell', 'shell-line', 'sftp', 'direct-tcpip', 'tcpip-forward', 'auth-agent', 'git-push'])).nonempty().optional(),
      /** sftp operations: read and write (an open for reading or writing), remove, rename, mkdir, rmdir, setstat, symlink. */
      operations: z.array(z.enum(['read', 'write', 'remove', 'rename', 'mkdir', 'rmdir', 'setstat', 'symlink'])).nonempty().optional(),
      /** Globs over the paths an sftp operation names (`/etc/*`); either path of a rename counts. */
      paths: z.array(z.string().min(1)).nonempty().optional(),
    })
    .refine((s) => s.requests !== undefined || s.operations !== undefined || s.paths !== undefined, 'expected at least one of requests, operations, paths')
    .optional(),
  /**
   * The ref updates of a `git push` over ssh (protocol ssh, request git-push): matches when one
   * update meets every condition given; the push is decided as a whole (any deny refuses it all).
   */
  git: z
    .strictObject({
      /** Globs over the repository path as the client named it (`/srv/git/app.git`), also tried without a trailing `.git`. */
      repositories: z.array(z.string().min(1)).nonempty().optional(),
      /** Globs over full ref names: `refs/heads/main`, `refs/tags/*`. */
      refs: z.array(z.string().min(1)).nonempty().optional(),
      /** create (from nothing), update (an existing ref moves), delete. */
      actions: z.array(z.enum(['create', 'update', 'delete'])).nonempty().optional(),
      /**
       * true: an update that is not a fast-forward, or that Agate cannot prove is one (fail
       * closed); false: only an update proven fast-forward, or a create or delete.
       */
      forced: z.boolean().optional(),
    })
    .refine((g) => g.repositories !== undefined || g.refs !== undefined || g.actions !== undefined || g.forced !== undefined, 'expected at least one of repositories, refs, actions, forced')
    .optional(),
  /**
   * Shell command lines (protocol ssh), parsed with bash's grammar: matches when one simple command
   * (in a pipeline, list, subshell, substitution, `sh -c`/`eval` string or behind a wrapper such as
   * sudo or xargs) meets every condition given.
   */
  shell: z
    .strictObject({
      /** Program names, compared with the basename of the command's argv[0] (globs allowed). */
      commands: z.array(z.string().min(1)).nonempty().optional(),
      /** Flags that must all be present, in canonical form: `-r` matches `-rf`, `-R`, `--recursive`. */
      flags: z.array(z.string().regex(/^--?[^-\s]/, 'expected a flag such as -r or --force')).nonempty().optional(),
      /** Globs over the operands (non-flag arguments): matches when any operand matches one. */
      args: z.array(z.string().min(1)).nonempty().optional(),
      /** true: only an interpreter running downloaded code matches (`curl … | sh`, `bash <(wget …)`). */
      download_to_interpreter: z.literal(true).optional(),
    })
    .refine((s) => s.commands !== undefined || s.download_to_interpreter !== undefined, 'expected commands or download_to_interpreter')
    .optional(),
});

export const APPROVAL_WEBHOOK_EVENTS = ['approval.requested', 'approval.decision', 'approval.resolved'] as const;

/** A receiver of signed approval notifications; the secret is named, never written in the file. */
const approvalWebhook = z
  .strictObject({
    url: z.url().refine((u) => /^https?:/.test(u), 'expected an http(s) URL'),
    /** Environment variable holding the HMAC secret. */
    secret_env: z.string().min(1).optional(),
    /** File holding the HMAC secret (trailing newline ignored). */
    secret_file: z.string().min(1).optional(),
    events: z.array(z.enum(APPROVAL_WEBHOOK_EVENTS)).nonempty().default([...APPROVAL_WEBHOOK_EVENTS]),
    /** Deliveries tried per notification before it is given up (logged). */
    max_attempts: z.number().int().min(1).max(20).default(6),
    /** Notifications waiting for this receiver; past it the oldest is dropped (logged). */
    queue_size: z.number().int().min(1).max(100_000).default(1000),
    timeout_ms: duration.default(5000),
  })
  .refine((w) => (w.secret_env === undefined) !== (w.secret_file === undefined), 'expected exactly one of secret_env, secret_file');

/** With `action: hold`: who may release the command, how many of them, and for how long. */
const approval = z.strictObject({
  /** Claims (globs, as in `match.claims`) an approver's token must carry, besides the API's approver role. */
  approvers: z.strictObject({ claims: z.record(z.string(), z.union([z.string(), z.array(z.string())])).default({}) }).default({ claims: {} }),
  /** Distinct approvers needed. */
  required: z.number().int().min(1).max(10).default(1),
  timeout_s: z.number().positive().max(86_400).default(300),
  allow_self_approval: z.boolean().default(false),
});

const rule = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'expected a lower-case id such as no-drop'),
  action: z.enum(['allow', 'deny', 'hold']),
  /** Only with `action: hold`; defaults apply when omitted. */
  approval: approval.optional(),
  message: z.string().optional(),
  match: ruleMatch.default({}),
  /** Only with `action: allow`: the statement runs, and its results reach the client masked. */
  mask_client: maskClient.default(false),
});

/**
 * Query API roles come from one claim of the bearer token. Its value (a string, or a JSON list of
 * strings) is matched against each role's globs; a token may hold several roles. A token that
 * holds none gets `default_role`, `none` unless set: an agent's own CI token reads nothing.
 */
const QUERY_ROLES_DEFAULT = { claim: 'agate_role', default_role: 'none' as const, analyst: ['analyst'], auditor: ['auditor'], approver: ['approver'], admin: ['admin'] };
const queryRoles = z.strictObject({
  claim: z.string().min(1).default(QUERY_ROLES_DEFAULT.claim),
  /** Role of a token whose claim is absent or matches no glob; `none` refuses such tokens. */
  default_role: z.enum(['none', 'analyst', 'auditor', 'approver', 'admin']).default(QUERY_ROLES_DEFAULT.default_role),
  analyst: z.array(z.string()).default(QUERY_ROLES_DEFAULT.analyst),
  auditor: z.array(z.string()).default(QUERY_ROLES_DEFAULT.auditor),
  approver: z.array(z.string()).default(QUERY_ROLES_DEFAULT.approver),
  admin: z.array(z.string()).default(QUERY_ROLES_DEFAULT.admin),
});

/** Limits the engine applies to every analyst SQL query (ClickHouse settings of the same names). */
const QUERY_SQL_DEFAULT = { max_execution_time_s: 10, max_result_rows: 100_000, max_memory_bytes: 1 << 30 };
const querySql = z.strictObject({
  max_execution_time_s: z.number().positive().max(3600).default(QUERY_SQL_DEFAULT.max_execution_time_s),
  max_result_rows: z.number().int().min(1).max(100_000_000).default(QUERY_SQL_DEFAULT.max_result_rows),
  max_memory_bytes: z.number().int().min(1 << 20).default(QUERY_SQL_DEFAULT.max_memory_bytes),
});

const queryExport = z.strictObject({
  /** Token for a Splunk HTTP Event Collector; `agate export --to hec URL` reads it here or from AGATE_HEC_TOKEN. */
  hec_token: secret.optional(),
});

/**
 * Every listener (PostgreSQL, SSH, Kubernetes, the query API): how long a connection may take to
 * log in, how many may be logging in at once, and how repeated failures from one address are
 * slowed down.
 */
const LOGINS_DEFAULT = {
  timeout_ms: 10_000,
  max_pending: 64,
  throttle: { max_failures: 20, window_s: 60, block_s: 10, max_block_s: 900 },
};
const logins = z.strictObject({
  /** A connection that has not logged in by then is closed and recorded (PostgreSQL's authentication_timeout). */
  timeout_ms: z.number().int().min(100).max(600_000).default(LOGINS_DEFAULT.timeout_ms),
  /** Per listener, connections still logging in; counted apart from sessions so they never starve them. */
  max_pending: z.number().int().min(1).max(100_000).default(LOGINS_DEFAULT.max_pending),
  throttle: z
    .strictObject({
      /** Failed logins from one address within window_s that get it refused; 0 turns throttling off. */
      max_failures: z.number().int().min(0).default(LOGINS_DEFAULT.throttle.max_failures),
      window_s: z.number().int().min(1).max(86_400).default(LOGINS_DEFAULT.throttle.window_s),
      /** The first refusal period; each further one doubles, up to max_block_s. */
      block_s: z.number().int().min(1).max(86_400).default(LOGINS_DEFAULT.throttle.block_s),
      max_block_s: z.number().int().min(1).max(604_800).default(LOGINS_DEFAULT.throttle.max_block_s),
    })
    .refine((t) => t.max_block_s >= t.block_s, 'expected max_block_s >= block_s')
    .default(LOGINS_DEFAULT.throttle),
});

/**
 * The ops listener (`/healthz`, `/readyz`, `/metrics`) and how a stop drains. Off unless `listen`
 * is set: several `agate` processes on one host (`npm run stack`, the test suites) share one
 * config, and a default port would make all but the first fail to start. The Helm chart sets it.
 */
const OPS_DEFAULT = { drain_timeout_ms: 25_000 };
const ops = z.strictObject({
  listen: hostPort.optional(),
  /**
   * On SIGTERM the proxies stop accepting and close each session once no statement is in flight;
   * sessions still busy after this long are closed anyway. Keep it below the orchestrator's grace
   * period (Kubernetes: terminationGracePeriodSeconds, 30 s by default).
   */
  drain_timeout_ms: z.number().int().min(0).max(3_600_000).default(OPS_DEFAULT.drain_timeout_ms),
});

/**
 * SAML 2.0 sign-in to the console (SP-initiated: HTTP-Redirect AuthnRequest, HTTP-POST response).
 * Only signed assertions from `idp_entity_id`, for `sp_entity_id`, answering a request this
 * service made, are accepted. Attributes become claims (a multi-valued one a JSON list).
 */
const consoleSaml = z.strictObject({
  /** The IdP's entityID, the Issuer its assertions must carry (its metadata's EntityDescriptor entityID). */
  idp_entity_id: z.string().min(1),
  /** The IdP's SingleSignOnService location for the HTTP-Redirect binding. */
  idp_sso_url: z.url(),
  /** PEM file of the IdP's signing certificate(s) (one or more CERTIFICATE blocks); assertions signed by another key are refused. */
  idp_cert_file: z.string().min(1),
  /** This service's entityID as registered at the IdP; assertions must name it as their Audience. */
  sp_entity_id: z.string().min(1),
  /** Where the IdP posts the response: this service's origin followed by /ui/saml/acs. */
  acs_url: z.url().refine((u) => new URL(u).pathname === '/ui/saml/acs', 'expected a URL whose path is /ui/saml/acs'),
  /** Clock difference tolerated when checking NotBefore / NotOnOrAfter. */
  clock_skew_s: z.number().int().min(0).max(600).default(60),
});

/**
 * The web console (served by the query service under /ui/): humans sign in with OIDC
 * (authorization code + PKCE) or SAML 2.0 at their own identity provider, never with an
 * agent's token. Roles come from the ID token's claims or the SAML attributes exactly as
 * `query.roles` maps a bearer token's.
 */
const consoleSection = z.strictObject({
  oidc: z.strictObject({
    /** The identity provider's issuer URL (discovery at ISSUER/.well-known/openid-configuration). */
    issuer: z.url(),
    client_id: z.string().min(1),
    /** A confidential client's secret, named, never written in the file; omit for a public client. */
    client_secret: secret.optional(),
    /** Where the provider sends the browser back: this service's origin followed by /ui/callback. */
    redirect_url: z.url().refine((u) => new URL(u).pathname === '/ui/callback', 'expected a URL whose path is /ui/callback'),
    scopes: z.array(z.string().min(1)).default(['openid', 'profile', 'email']),
  }).optional(),
  saml: consoleSaml.optional(),
  roles: queryRoles.default(QUERY_ROLES_DEFAULT),
  /** A signed-in session ends this long after sign-in. */
  session_ttl_s: duration.max(7 * 24 * 3600).default(8 * 3600),
});

export const configSchema = z.strictObject({
  instance_id: z.string().default(`${hostname()}-${process.pid}`),
  data_dir: z.string().default('.agate'),
  log_level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  identity: z.strictObject({
    issuers: z.array(issuer).default([]),
    dev_issuer: z
      .strictObject({ enabled: z.boolean().default(false), audience: z.string().default('agate'), token_ttl_s: duration.default(3600) })
      .default({ enabled: false, audience: 'agate', token_ttl_s: 3600 }),
  }),
  bus: withKind('local', z
    .discriminatedUnion('kind', [
      z.strictObject({ kind: z.literal('local'), fsync: z.boolean().default(true) }),
      z.strictObject({
        kind: z.literal('kafka'),
        brokers: z.array(hostPort).nonempty(),
        events_topic: z.string().default('agate.events'),
        verdicts_topic: z.string().default('agate.verdicts'),
        /**
         * Prefix of this deployment's consumer groups; default: `agate` for the default events topic,
         * else the events topic. Two deployments on one Kafka need different topics or prefixes.
         */
        group_prefix: z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected letters, digits, dots, dashes or underscores').optional(),
        /**
         * How long a proxy's verdict group must stay without a member (the broker drops a member
         * 10 s after its last heartbeat) before the ledger closes the proxy's open sessions.
         */
        proxy_lease_ms: z.number().int().min(1_000).default(10_000),
        /** Partitions of a topic Agate creates; the ledger keeps one hash chain per partition. */
        partitions: z.number().int().min(1).default(6),
        replication_factor: z.number().int().min(1).default(3),
        /** TLS to the brokers (a `SSL` or `SASL_SSL` listener). */
        tls: clientTls.optional(),
        /** SASL login to the brokers; `plain` only over TLS, since it sends the password as is. */
        sasl: z.strictObject({ mechanism: z.enum(['scram-sha-512', 'scram-sha-256', 'plain']), username: z.string().min(1), password: secret }).optional(),
        /** Default min(2, replication_factor): an acknowledged event survives the loss of one broker. */
        min_insync_replicas: z.number().int().min(1).optional(),
        /** How long the events topic keeps events (7 days; -1: forever); the ledger is the lasting record. */
        retention_ms: z.number().int().min(-1).default(604_800_000),
        /** A Confluent-compatible registry: events travel in the Confluent wire format. */
        schema_registry: z
          .strictObject({
            url: z.url(),
            /** HTTP basic authentication (Confluent `USER_INFO`), or a bearer token; not both. */
            username: z.string().optional(),
            password: secret.optional(),
            token: secret.optional(),
            tls: clientTls.optional(),
          })
          .refine((r) => (r.username === undefined) === (r.password === undefined), 'expected both username and password, or neither')
          .refine((r) => r.token === undefined || r.username === undefined, 'expected either username/password or token, not both')
          .optional(),
      }),
    ]))
    .default({ kind: 'local', fsync: true }),
  store: withKind('embedded', z
    .discriminatedUnion('kind', [
      z.strictObject({ kind: z.literal('embedded'), path: z.string().optional() }),
      z.strictObject({
        kind: z.literal('clickhouse'),
        url: z.url(),
        username: z.string().default('default'),
        password: secret.optional(),
        /** With an https:// URL: the CA (default: the system's) and a client certificate. */
        tls: clientTls.optional(),
      }),
    ]))
    .default({ kind: 'embedded' }),
  proxy: z
    .strictObject({
      postgres: z
        .strictObject({
          listen: hostPort.default('127.0.0.1:6432'),
          max_message_bytes: z.number().int().min(1024).max(1 << 30).default(16 << 20),
          max_connections: z.number().int().min(1).default(1000),
          /** Rows (or COPY lines) of each result kept, masked, in the Response event. */
          record_rows: z.number().int().min(0).max(1000).default(10),
          /** Each recorded value is cut to this many characters. */
          record_value_chars: z.number().int().min(8).max(65536).default(256),
          /** TLS termination for clients that ask for it (sslmode=require / verify-full). */
          tls: z.strictObject({ cert: z.string(), key: z.string() }).optional(),
        })
        .default({ listen: '127.0.0.1:6432', max_message_bytes: 16 << 20, max_connections: 1000, record_rows: 10, record_value_chars: 256 }),
      /** The SSH proxy; it runs only when this section is present. */
      ssh: z
        .strictObject({
          listen: hostPort.default('127.0.0.1:2222'),
          /** The proxy's own host key (OpenSSH format); an ed25519 key is generated there on first start. */
          host_key_file: z.string(),
          max_connections: z.number().int().min(1).default(100),
          /** Public keys clients may log in with instead of a token, each standing for one identity. */
          authorized_keys: z
            .array(
              z.strictObject({
                /** As in an authorized_keys file: `ssh-ed25519 AAAA… [comment]`. */
                key: z.string().regex(/^(ssh-[a-z0-9-]+|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}( .*)?$/, 'expected a public key such as "ssh-ed25519 AAAA…"'),
                /** The identity's subject (`sub`); its issuer is `agate:ssh-public-key`. */
                subject: z.string().min(1),
                /** Claims policy rules can match, as for a token (`repository`, `environment`, …). */
                claims: z.record(z.string(), z.string()).default({}),
              }),
            )
            .default([]),
        })
        .optional(),
      verdict_timeout_ms: duration.default(2000),
    })
    .default({ postgres: { listen: '127.0.0.1:6432', max_message_bytes: 16 << 20, max_connections: 1000, record_rows: 10, record_value_chars: 256 }, verdict_timeout_ms: 2000 }),
  logins: logins.default(LOGINS_DEFAULT),
  targets: z.array(target).default([]),
  masking: z
    .strictObject({
      /** Named mask sets; `default` exists unless redefined (see BUILTIN_MASK_SET). */
      sets: z.record(maskSetName, maskSet).default({}),
      /** The set always applied to recorded content (samples, parameters, SQL text, errors). */
      audit: maskSetName.default('default'),
    })
    .default({ sets: {}, audit: 'default' }),
  /** Notifications about held commands (see README, "Approval webhooks"). */
  approvals: z
    .strictObject({ webhooks: z.array(approvalWebhook).default([]) })
    .default({ webhooks: [] }),
  policy: z
    .strictObject({
      default: z.enum(['allow', 'deny']).default('deny'),
      rules: z.array(rule).default([]),
      /** How often the policy service checks the config file for policy edits; 0 turns hot reload off. */
      reload_ms: z.number().int().min(0).max(3_600_000).default(1000),
    })
    .default({ default: 'deny', rules: [], reload_ms: 1000 }),
  ledger: z
    .strictObject({
      /** Log name: the checkpoint key's name; each chain's checkpoint origin is ORIGIN/CHAIN. */
      origin: z.string().regex(/^[^\s+]+$/, 'expected a name without spaces or +, e.g. agate.example.com/ledger').default('agate.local/ledger'),
      /** Ed25519 signer key in note format; generated on first start on the embedded bus, required to exist on Kafka (one key for all ledger instances). Default DATA_DIR/ledger/checkpoint.key. */
      signing_key: z.string().optional(),
      checkpoint: z
        .strictObject({
          every_events: z.number().int().min(1).default(10_000),
          every_ms: duration.default(10_000),
          /** A directory outside the store where every signed checkpoint is written as a file. */
          dir: z.string().optional(),
          /** An HTTP(S) endpoint that receives every signed checkpoint (POST, text/plain). */
          webhook: z.url().optional(),
        })
        .default({ every_events: 10_000, every_ms: 10_000 }),
      /** Days after which whole blocks of 2^20 records expire; unset keeps everything. */
      retention_days: z.number().int().min(1).optional(),
      /** Latest event ids remembered to drop redelivered events. */
      dedup_window: z.number().int().min(1000).default(100_000),
    })
    .default({ origin: 'agate.local/ledger', checkpoint: { every_events: 10_000, every_ms: 10_000 }, dedup_window: 100_000 }),
  query: z
    .strictObject({
      listen: hostPort.default('127.0.0.1:7480'),
      /** Serve the API over HTTPS with this certificate and key (PEM files). */
      tls: z.strictObject({ cert: z.string(), key: z.string() }).optional(),
      /** Claims a bearer token must carry to read the audit API (same glob rules as policy). */
      require_claims: z.record(z.string(), z.union([z.string(), z.array(z.string())])).default({}),
      roles: queryRoles.default(QUERY_ROLES_DEFAULT),
      sql: querySql.default(QUERY_SQL_DEFAULT),
      export: queryExport.default({}),
    })
    .default({ listen: '127.0.0.1:7480', require_claims: {}, roles: QUERY_ROLES_DEFAULT, sql: QUERY_SQL_DEFAULT, export: {} }),
  ops: ops.default(OPS_DEFAULT),
  /** The web console under /ui/ of the query service; absent, /ui/ answers 404. */
  console: consoleSection.optional(),
});

export type AgateConfig = z.infer<typeof configSchema> & { source: string };
export type PostgresTargetConfig = z.infer<typeof postgresTarget>;
export type SshTargetConfig = z.infer<typeof sshTarget>;
export type KubernetesTargetConfig = z.infer<typeof kubernetesTarget>;
export type TargetConfig = z.infer<typeof target>;
export type IssuerConfig = z.infer<typeof issuer>;
export type PolicyConfig = AgateConfig['policy'];
export type RuleConfig = z.infer<typeof rule>;
export type ApprovalConfig = z.infer<typeof approval>;
export type ApprovalWebhookConfig = z.infer<typeof approvalWebhook>;
export type SecretRef = z.infer<typeof secret>;
export type MaskSetConfig = z.infer<typeof maskSet>;
export type MaskingConfig = AgateConfig['masking'];
export type QueryRolesConfig = z.infer<typeof queryRoles>;
export type QuerySqlConfig = z.infer<typeof querySql>;
export type LoginsConfig = z.infer<typeof logins>;
export type OpsConfig = z.infer<typeof ops>;
export type ConsoleConfig = z.infer<typeof consoleSection>;

/**
 * Reads, validates and normalises a config file. Relative paths in it are resolved against the
 * file's directory. Errors name the file, the line, the key and what was expected.
 */
export function loadConfig(path: string): AgateConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new AgateError(ErrorCode.CONFIG_UNREADABLE, `cannot read config file ${path}: ${(cause as Error).message}`, { cause });
  }
  return parseConfig(text, path);
}

export function parseConfig(text: string, source: string): AgateConfig {
  const { doc, lines } = readYaml(text, source);
  const result = configSchema.safeParse(doc.toJS() ?? {});
  if (!result.success) throw schemaError(result.error.issues, doc, lines, source);
  const base = dirname(resolve(source));
  const cfg = result.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  cfg.data_dir = abs(cfg.data_dir);
  if (cfg.store.kind === 'embedded' && cfg.store.path !== undefined) cfg.store.path = abs(cfg.store.path);
  cfg.ledger.signing_key = abs(cfg.ledger.signing_key ?? join(cfg.data_dir, 'ledger', 'checkpoint.key'));
  if (cfg.ledger.checkpoint.dir !== undefined) cfg.ledger.checkpoint.dir = abs(cfg.ledger.checkpoint.dir);
  for (const t of cfg.targets) {
    if (t.protocol === 'kubernetes') {
      t.upstream.kubeconfig = abs(t.upstream.kubeconfig);
      t.tls.cert = abs(t.tls.cert);
      t.tls.key = abs(t.tls.key);
      if (t.tls.ca !== undefined) t.tls.ca = abs(t.tls.ca);
      continue;
    }
    if (t.upstream.password?.file !== undefined) t.upstream.password.file = abs(t.upstream.password.file);
    if (t.protocol === 'postgres' && t.upstream.tls.ca !== undefined) t.upstream.tls.ca = abs(t.upstream.tls.ca);
    if (t.protocol === 'ssh' && t.upstream.private_key_file !== undefined) t.upstream.private_key_file = abs(t.upstream.private_key_file);
  }
  if (cfg.proxy.ssh !== undefined) cfg.proxy.ssh.host_key_file = abs(cfg.proxy.ssh.host_key_file);
  if (cfg.query.export.hec_token?.file !== undefined) cfg.query.export.hec_token.file = abs(cfg.query.export.hec_token.file);
  const names = new Set<string>();
  for (const [i, t] of cfg.targets.entries()) {
    if (names.has(t.name)) throw new ConfigError(`${source}: targets[${i}].name: duplicate target name "${t.name}"`);
    names.add(t.name);
  }
  checkPolicy(cfg.policy, cfg.masking, source);
  for (const [i, t] of cfg.targets.entries()) if (t.protocol === 'postgres' || t.protocol === 'kubernetes') maskRef(cfg.masking, t.mask_client, `targets[${i}].mask_client`, source);
  if (cfg.bus.kind === 'kafka' && cfg.bus.min_insync_replicas !== undefined && cfg.bus.min_insync_replicas > cfg.bus.replication_factor) {
    throw new ConfigError(`${source}: bus.min_insync_replicas: ${cfg.bus.min_insync_replicas} is more than bus.replication_factor (${cfg.bus.replication_factor}); no write could ever be acknowledged`);
  }
  const tls = cfg.proxy.postgres.tls;
  if (tls !== undefined) {
    tls.cert = abs(tls.cert);
    tls.key = abs(tls.key);
  }
  if (cfg.query.tls !== undefined) cfg.query.tls = { cert: abs(cfg.query.tls.cert), key: abs(cfg.query.tls.key) };
  if (cfg.console?.oidc?.client_secret?.file !== undefined) cfg.console.oidc.client_secret.file = abs(cfg.console.oidc.client_secret.file);
  if (cfg.console?.saml !== undefined) cfg.console.saml.idp_cert_file = abs(cfg.console.saml.idp_cert_file);
  if (cfg.console !== undefined) {
    if (cfg.console.oidc === undefined && cfg.console.saml === undefined) throw new ConfigError(`${source}: console: expected an identity provider (console.oidc, console.saml or both)`);
    // Sign-in over plain HTTP would expose the code, tokens or assertion; only a loopback provider (tests, a laptop) may use it.
    const plain = (url: string, key: string) => {
      const u = new URL(url);
      if (u.protocol !== 'https:' && !isLoopbackHost(u.hostname)) throw new ConfigError(`${source}: ${key}: expected an https:// URL (plain http only on loopback)`);
    };
    if (cfg.console.oidc !== undefined) plain(cfg.console.oidc.issuer, 'console.oidc.issuer');
    if (cfg.console.saml !== undefined) plain(cfg.console.saml.idp_sso_url, 'console.saml.idp_sso_url');
  }
  const absTls = (t: ClientTlsConfig | undefined) => {
    if (t === undefined) return;
    for (const k of ['ca', 'cert', 'key'] as const) if (t[k] !== undefined) t[k] = abs(t[k]);
  };
  if (cfg.bus.kind === 'kafka') {
    absTls(cfg.bus.tls);
    absTls(cfg.bus.schema_registry?.tls);
    if (cfg.bus.sasl?.mechanism === 'plain' && cfg.bus.tls === undefined) {
      throw new ConfigError(`${source}: bus.sasl.mechanism: plain sends the password in the clear; add bus.tls or use scram-sha-512`);
    }
    for (const ref of [cfg.bus.sasl?.password, cfg.bus.schema_registry?.password, cfg.bus.schema_registry?.token]) if (ref?.file !== undefined) ref.file = abs(ref.file);
  }
  if (cfg.store.kind === 'clickhouse') {
    absTls(cfg.store.tls);
    if (cfg.store.tls !== undefined && !cfg.store.url.startsWith('https://')) throw new ConfigError(`${source}: store.tls: needs an https:// store.url`);
    if (cfg.store.password?.file !== undefined) cfg.store.password.file = abs(cfg.store.password.file);
  }
  if (cfg.identity.issuers.length === 0 && !cfg.identity.dev_issuer.enabled) {
    throw new ConfigError(`${source}: identity.issuers: expected at least one trusted issuer (or identity.dev_issuer.enabled: true for local trials)`);
  }
  return { ...cfg, source };
}

function readYaml(text: string, source: string): { doc: ReturnType<typeof parseDocument>; lines: LineCounter } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const { line, col } = lines.linePos(e.pos[0]);
    throw new ConfigError(`${source}:${line}:${col}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  return { doc, lines };
}

/** One error naming, for each problem, the file, the line of the key, the key and what was expected. */
function schemaError(issues: readonly z.core.$ZodIssue[], doc: ReturnType<typeof parseDocument>, lines: LineCounter, source: string, docPath: (path: PropertyKey[]) => PropertyKey[] = (p) => p): ConfigError {
  const problems = issues.map((issue) => {
    const path = docPath(issue.path);
    const key = path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') || '(top level)';
    // For an unknown key, point at the key itself rather than its parent.
    const at = issue.code === 'unrecognized_keys' ? [...path, issue.keys[0]!] : path;
    const node = doc.getIn(at, true) ?? doc.getIn(path, true);
    const where = isNode(node) && node.range ? `:${lines.linePos(node.range[0]).line}` : '';
    return `${source}${where}: ${key}: ${issue.message}`;
  });
  return new ConfigError(`invalid configuration\n  ${problems.join('\n  ')}`);
}

function maskRef(masking: MaskingConfig, ref: boolean | string, key: string, source: string): void {
  if (typeof ref === 'string' && masking.sets[ref] === undefined) throw new ConfigError(`${source}: ${key}: no mask set named "${ref}" in masking.sets`);
}

/** What the schema cannot say about a policy: unique rule ids, known mask sets, actions that fit their options. Adds the built-in default mask set. */
function checkPolicy(policy: PolicyConfig, masking: MaskingConfig, source: string): void {
  const ids = new Set<string>();
  for (const [i, r] of policy.rules.entries()) {
    if (ids.has(r.id)) throw new ConfigError(`${source}: policy.rules[${i}].id: duplicate rule id "${r.id}"`);
    ids.add(r.id);
  }
  if (masking.sets.default === undefined) masking.sets.default = { columns: [...BUILTIN_MASK_SET.columns], detectors: [...BUILTIN_MASK_SET.detectors] };
  maskRef(masking, masking.audit, 'masking.audit', source);
  for (const [i, r] of policy.rules.entries()) {
    maskRef(masking, r.mask_client, `policy.rules[${i}].mask_client`, source);
    if (r.mask_client !== false && r.action !== 'allow') throw new ConfigError(`${source}: policy.rules[${i}].mask_client: only an allow rule can mask results`);
    if (r.approval !== undefined && r.action !== 'hold') throw new ConfigError(`${source}: policy.rules[${i}].approval: only a hold rule takes an approval section`);
  }
}

const candidateSchema = z.strictObject({ policy: configSchema.shape.policy, masking: configSchema.shape.masking });

/** A policy to try without putting it in force (`agate policy backtest`, the console's Policy page). */
export interface PolicyCandidate {
  policy: PolicyConfig;
  masking: MaskingConfig;
}

/**
 * Reads a candidate policy: either a whole config file (its `policy:` and `masking:` sections are
 * taken, the rest ignored) or a bare policy section (`default:`, `rules:`). Validated exactly as the
 * config file's own policy, with errors naming the source's line and key; a candidate without
 * `masking:` uses the mask sets in force.
 */
export function parsePolicyCandidate(text: string, source: string, inForce: MaskingConfig): PolicyCandidate {
  const { doc, lines } = readYaml(text, source);
  const js: unknown = doc.toJS() ?? {};
  if (js === null || typeof js !== 'object' || Array.isArray(js)) throw new ConfigError(`${source}: expected a policy (default:, rules:) or a config file with a policy: section`);
  const whole = 'policy' in js;
  const raw = js as Record<string, unknown>;
  const result = candidateSchema.safeParse({ policy: whole ? raw.policy : raw, masking: (whole ? raw.masking : undefined) ?? structuredClone(inForce) });
  if (!result.success) throw schemaError(result.error.issues, doc, lines, source, (p) => (whole || p[0] !== 'policy' ? p : p.slice(1)));
  checkPolicy(result.data.policy, result.data.masking, source);
  return result.data;
}

/** 127.0.0.0/8, ::1 and localhost: where plain HTTP never leaves the machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Resolves a secret reference at the moment it is needed; the value is never logged. */
export function readSecret(ref: SecretRef, what: string): string {
  if (ref.value !== undefined) return ref.value;
  if (ref.env !== undefined) {
    const v = process.env[ref.env];
    if (v === undefined) throw new ConfigError(`${what}: environment variable ${ref.env} is not set`);
    return v;
  }
  try {
    return readFileSync(ref.file!, 'utf8').trimEnd();
  } catch (cause) {
    throw new ConfigError(`${what}: cannot read secret file ${ref.file}`, { cause });
  }
}
