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

const hostPort = z.string().regex(/^[^:\s]+:\d{1,5}$/, 'expected HOST:PORT, e.g. 127.0.0.1:6432').meta({ docType: 'HOST:PORT' });
const duration = z.number().int().positive();

/** A secret named, never written in the file: read at the moment it is needed and never logged. */
const secret = z
  .strictObject({ value: z.string().optional(), env: z.string().optional(), file: z.string().optional() })
  .refine((s) => [s.value, s.env, s.file].filter((v) => v !== undefined).length === 1, 'expected exactly one of value, env, file')
  .meta({ docLeaf: true, docType: 'secret: `{value}`, `{env: VAR}` or `{file: PATH}`' });

/**
 * TLS to a server Agate connects to (Kafka, the schema registry, a ClickHouse server): PEM files
 * for the CA that signs the server (default: the system's CAs) and, for mutual TLS, the client's
 * certificate and key. The server's name is always checked.
 */
const clientTls = z
  .strictObject({
    ca: z.string().optional().describe("PEM file of the CA that signs the server's certificate; default the system's CAs"),
    cert: z.string().optional().describe('PEM file of the client certificate, for mutual TLS (with `key`)'),
    key: z.string().optional().describe('PEM file of the client key, for mutual TLS (with `cert`)'),
    server_name: z.string().optional().describe("the name checked in the server's certificate; default the host connected to"),
  })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), 'expected both cert and key (mutual TLS) or neither');
export type ClientTlsConfig = z.infer<typeof clientTls>;

/** `kind` may be left out of a section; it then means the embedded default. */
function withKind<T extends z.ZodType>(fallback: string, schema: T) {
  return z.preprocess((v) => (v !== null && typeof v === 'object' && !('kind' in v) ? { kind: fallback, ...v } : v), schema);
}

const globs = z.record(z.string(), z.union([z.string(), z.array(z.string())]));
const targetName = z.string().regex(/^[a-zA-Z0-9_.-]+$/, 'expected a name of letters, digits, _ . -');
const labels = z.record(z.string(), z.string()).default({}).describe('free-form labels carried into every event of the target');

const issuer = z.strictObject({
  issuer: z.url().describe('the issuer URL; must equal the token\'s `iss`'),
  audience: z.union([z.string(), z.array(z.string()).nonempty()]).describe('checked against the token\'s `aud`'),
  jwks_uri: z.url().optional().describe("the issuer's key set; default from its OpenID discovery document"),
  algorithms: z
    .array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']))
    .nonempty()
    .default(['RS256', 'ES256'])
    .describe('signature algorithms accepted; `none` and HMAC are never accepted'),
  clock_tolerance_s: z.number().int().min(0).max(300).default(30).describe('`exp`, `nbf` and `iat` may be this far off; an `iat` further in the future is refused'),
  /*
   * CI tokens are short: GitHub Actions id-tokens live minutes, GitLab CI id-tokens until the job's
   * timeout (1 h by default), Kubernetes projected tokens 1 h by default; a token valid for days is
   * a leaked-token risk, not a CI token.
   */
  max_token_lifetime_s: z
    .number().int().min(60).max(7 * 86400)
    .default(3600)
    .describe('a token living longer (`exp − iat`, or `exp − now` without `iat`) is refused with `AUTH_TOKEN_LIFETIME_TOO_LONG`; GitHub Actions tokens live minutes, GitLab CI tokens until the job timeout, so raise it for longer GitLab jobs. A token marking any header extension critical (`crit`) is refused with `AUTH_CRIT_UNSUPPORTED`'),
  subject_claim: z.string().default('sub').describe('the claim that names the identity in the audit trail'),
  /*
   * A key the issuer took out of its key set (revoked) verifies until Agate fetches the set again;
   * this bounds how long. The key set's own Cache-Control max-age may make it shorter.
   */
  jwks_max_age_s: z
    .number().int().min(1).max(600)
    .default(60)
    .describe("the key set is fetched again when a token arrives this long after the last fetch, or sooner when the key set's `Cache-Control: max-age` says so (never more than once per 2 s): a key removed from it stops verifying within this time"),
  allowed_azp: z
    .array(z.string().min(1))
    .nonempty()
    .optional()
    .describe('the clients (`azp`) whose tokens are accepted; default: the `audience` values. A token with an `azp` not listed, or with several audiences and no `azp`, is refused with `AUTH_AZP_REFUSED` (it was minted for another client of the issuer). `["*"]` accepts any `azp`, or none'),
});

/** Value detectors a mask set can use; see services/ingress-proxy/src/masking/detectors.ts. */
const DETECTORS = ['private_key', 'jwt', 'cloud_access_key', 'password_hash', 'card_number', 'email', 'connection_string'] as const;
export type DetectorName = (typeof DETECTORS)[number];

const maskSetName = z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'expected a lower-case mask set name such as pii');

const maskSet = z.strictObject({
  columns: z
    // An empty glob matches no column (PostgreSQL has no zero-length names): a typo that would leave its column unmasked.
    .array(z.string().refine((g) => g.trim() !== '', 'expected a column name or a glob such as *token*, not an empty string'))
    .default([])
    .describe('column-name globs (`*` matches anything, case-insensitive): every value of a matching column is masked — text types become `[masked]`, JSON `"[masked]"`, other types NULL'),
  detectors: z
    .array(z.enum(DETECTORS))
    .default([])
    .describe('value detectors run over text values; only the match is replaced with `[masked:<detector>]`: `private_key` (PEM/OpenSSH blocks), `jwt`, `cloud_access_key` (AWS key ids, GitHub, GitLab, Google API, Slack tokens), `password_hash` (bcrypt, argon2, sha-crypt, PostgreSQL md5 and SCRAM verifiers), `card_number` (13–19 digits passing the Luhn check), `email`, `connection_string` (the password of a libpq `key=value` string, a `Password=…;` or `?password=…&` string, or a URI\'s `user:password@`)'),
});

/** `true` means the audit mask set; a name picks one of `masking.sets`. */
const maskClient = z.union([z.boolean(), maskSetName]);

/** The set used when the config names none: common secret columns and every detector. */
export const BUILTIN_MASK_SET = {
  columns: ['*password*', '*passwd*', '*secret*', '*token*', '*api_key*', '*apikey*', '*private_key*', 'card_number', 'ssn'],
  detectors: [...DETECTORS],
};

const postgresTarget = z.strictObject({
  name: targetName.describe('what clients pass as `dbname` (PostgreSQL), log in as (SSH), or what `agate kubeconfig` names (Kubernetes)'),
  protocol: z.literal('postgres'),
  upstream: z.strictObject({
    host: z.string().describe('the target\'s host'),
    port: z.number().int().min(1).max(65535).default(5432).describe('the target\'s port'),
    database: z.string().describe('the database Agate logs in to'),
    user: z.string().describe('the role Agate logs in as (its own credential; clients never see it)'),
    password: secret.describe('resolved at start and at each login, never logged'),
    tls: z
      .strictObject({
        mode: z
          .enum(['disable', 'require', 'verify-full'])
          .default('disable')
          .describe('`require` encrypts; `verify-full` also checks the certificate chain against `ca` and the host name; Agate never falls back to clear text'),
        ca: z.string().optional().describe("PEM file of the CA for `verify-full`; default the system's CAs"),
      })
      .prefault({}),
  }),
  labels,
  mask_client: maskClient.default(false).describe('`true` (the audit set) or a set name: every result this target\'s clients receive is masked'),
});

/** A host key as in known_hosts (`ssh-ed25519 AAAA…`) or its OpenSSH fingerprint (`SHA256:…`). */
const pinnedHostKey = z
  .string()
  .regex(/^((ssh-[a-z0-9-]+|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}|SHA256:[A-Za-z0-9+/]{43})$/, 'expected a public key such as "ssh-ed25519 AAAA…" or a fingerprint such as "SHA256:…"');

const sshTarget = z.strictObject({
  name: targetName.describe('what clients pass as `dbname` (PostgreSQL), log in as (SSH), or what `agate kubeconfig` names (Kubernetes)'),
  protocol: z.literal('ssh'),
  upstream: z
    .strictObject({
      host: z.string().describe('the target\'s host'),
      port: z.number().int().min(1).max(65535).default(22).describe('the target\'s port'),
      user: z.string().describe('the account Agate logs in as'),
      private_key_file: z.string().optional().describe("Agate's own key for the target (OpenSSH or PEM, unencrypted); exactly one of this and `password`, read once at start"),
      password: secret.optional().describe('exactly one of this and `private_key_file`'),
      host_key: pinnedHostKey.describe("the target's host key, `ssh-ed25519 AAAA…` (as in `known_hosts`) or its fingerprint `SHA256:…`; any other key is refused"),
    })
    .refine((u) => (u.private_key_file === undefined) !== (u.password === undefined), 'expected exactly one of private_key_file, password'),
  labels,
});

/** A Kubernetes API server, reached with a kubeconfig's credential; kubectl talks to Agate's own listener. */
const kubernetesTarget = z.strictObject({
  name: targetName.describe('what clients pass as `dbname` (PostgreSQL), log in as (SSH), or what `agate kubeconfig` names (Kubernetes)'),
  protocol: z.literal('kubernetes'),
  listen: hostPort.describe("where this target's HTTPS endpoint listens (one listener per Kubernetes target)"),
  tls: z
    .strictObject({
      cert: z.string().describe('PEM file: the certificate kubectl sees'),
      key: z.string().describe('PEM file: its key'),
      ca: z.string().optional().describe('PEM file that goes into `agate kubeconfig`; default the certificate itself'),
    }),
  upstream: z.strictObject({
    kubeconfig: z.string().describe("a kubeconfig with Agate's own credential for the cluster (client certificate, token or exec plugin)"),
    context: z.string().optional().describe("the kubeconfig context to use; default its current context"),
  }),
  labels,
  mask_client: maskClient.default(false).describe("`true` (the audit set) or a set name: what this target's clients receive is masked (Secret data always; the set's key globs and detectors)"),
  mask_fields: z
    .array(z.string().regex(/^[^:\s]+:[^\s]+$/, 'expected KIND:dotted.path such as ConfigMap:data.*'))
    .default([])
    .describe('more values to mask, `KIND:dotted.path` with `*` for any key or element: `ConfigMap:data.*`, `*:spec.containers.*.env.*.value` (Secret data is always masked); in a `kubectl get` Table, a row of a kind named here has every cell but its name masked'),
  allow_discovery: z.boolean().default(true).describe('discovery requests (`GET /api`, `/apis…`, `/version`, `/openapi…`) are recorded and allowed by the built-in rule `agate.k8s-discovery` without asking policy'),
  max_body_bytes: z.number().int().min(1024).max(1 << 30).default(8 << 20).describe('request bodies beyond this are refused (413); they are digested and sampled before the verdict'),
  max_buffer_bytes: z
    .number().int().min(1024).max(1 << 30)
    .default(32 << 20)
    .describe('a response masked for the client, or a watch event, beyond this is withheld (fail closed); unmasked responses larger than it stream through and are recorded without names'),
  max_connections: z.number().int().min(1).default(1000).describe('client connections beyond this are not accepted (each may hold a watch and an upstream connection)'),
  record_objects: z.number().int().min(0).max(1000).default(10).describe('objects of each response kept, masked, in its `Response` event'),
  record_value_chars: z.number().int().min(8).max(1 << 20).default(1024).describe('each recorded body or object is cut to this many characters'),
});

const target = z
  .discriminatedUnion('protocol', [postgresTarget, sshTarget, kubernetesTarget])
  .describe('which proxy serves the target, and so which keys follow');

/**
 * What the Kubernetes proxy records in `attributes.privilege` (services/ingress-proxy/src/k8s/privilege.ts):
 * writes to roles (escalate) and bindings (bind), impersonation, service accounts, minted tokens,
 * certificate signing requests and their approval, namespace finalize, finalizer changes, webhooks
 * and admission policies (code the API server runs on everyone's requests).
 */
export const K8S_PRIVILEGE_FACTS = ['escalate', 'bind', 'impersonate', 'serviceaccount', 'token', 'csr', 'csr-approval', 'finalize', 'finalizers', 'webhook', 'admission-policy', 'trust-bundle', 'host'] as const;

/** `attributes.body` of a Kubernetes request whose body the proxy cannot read; matched by `match.kubernetes.unreadable_body`. */
export const K8S_UNREADABLE_BODY = 'unreadable';

/**
 * `attributes.input` of a Kubernetes upgrade whose client bytes reach a process or a port unread
 * (exec or attach with stdin, port-forward, proxy): allowed only by an allow rule that matches it.
 */
export const K8S_UNRECORDED_INPUT = 'unrecorded';

/**
 * `attributes.input` of an exec or attach over WebSocket whose client bytes Agate reads and
 * records, channel by channel, before they are forwarded: decided like any other request.
 */
export const K8S_RECORDED_INPUT = 'recorded';

const ruleMatch = z.strictObject({
  claims: globs.optional().describe('claim name → glob or list of globs (`*` matches anything); all must match; `iss` and `sub` are the verified identity'),
  targets: z.array(z.string()).optional().describe('target-name globs'),
  protocols: z.array(z.enum(['postgres', 'ssh', 'kubernetes'])).optional().describe('the protocols the rule applies to'),
  sql: z
    .strictObject({
      statements: z
        .array(z.string().regex(/^[A-Z][A-Za-z]+$/, 'expected a PostgreSQL parse-node name such as DropStmt'))
        .nonempty()
        .optional()
        .describe("PostgreSQL parse-node names, the precise form: `SelectStmt`, `InsertStmt`, `UpdateStmt`, `DeleteStmt`, `DropStmt`, `TruncateStmt`, `AlterTableStmt`, `CreateRoleStmt`, `GrantStmt`, … Statements nested in a CTE, `EXPLAIN`, `PREPARE` or a rule, each `MERGE` action (`WHEN MATCHED THEN DELETE` is a `DeleteStmt`), and the statements in a DO block's or a created function's body count; a call of `pg_notify` is a `NotifyStmt`"),
      effects: z
        .array(z.enum(SQL_EFFECTS as [SqlEffect, ...SqlEffect[]]))
        .nonempty()
        .optional()
        .describe("effect classes computed from the parse tree: `read`, `write` (INSERT/UPDATE/DELETE/MERGE/COPY FROM/TRUNCATE, and `SELECT … FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE`, whose row locks block other sessions' writes), `destroy` (every DROP including `DROP OWNED`, TRUNCATE, DELETE or UPDATE without WHERE, a MERGE that can DELETE, `ALTER … DROP COLUMN/CONSTRAINT`, `DETACH PARTITION`), `ddl`, `privilege` (GRANT/REVOKE, roles, owners, row-level security, user mappings, SECURITY DEFINER, `SET ROLE`/`SESSION AUTHORIZATION`), `session` (SET/SHOW/RESET, transactions, PREPARE/EXECUTE, LISTEN/NOTIFY), `code` (functions, procedures, DO, CALL, triggers, rules, extensions), `admin` (VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT, LOCK in a mode above ROW SHARE (pg_dump's ACCESS SHARE locks are `read`), LOAD, ALTER SYSTEM, databases, tablespaces, COPY to or from a server file or program, calls of built-ins such as `pg_read_file`, `lo_import`, `pg_terminate_backend`, `pg_reload_conf`, advisory locks, `pg_stat_reset*`, replication slots and logical decoding, whose `pg_logical_slot_get_changes` also reads every table; `PREPARE TRANSACTION`, `COMMIT`/`ROLLBACK PREPARED`); `lo_unlink` and `lo_truncate` are `destroy`, other large-object writes `write`, and the guarded `dynamic`, `opaque`, `unknown` and `stored` (code stored in the database that runs with the statement: a trigger, rule, view, row security policy, default, constraint or index expression of a table it touches, an event trigger its DDL fires, a function, operator or cast made earlier; see *What policy sees on PostgreSQL*). Prefer them to node names: `{ effects: [destroy] }` covers spellings a list of node names misses"),
      tables: z.array(z.string().min(1)).nonempty().optional().describe('globs over the tables a statement names, read or written (`users`, `public.users`, `vault_*`); unquoted names are lower case, as PostgreSQL folds them. A bare name matches the table in any schema; in a deny or hold rule `public.users` also matches an unqualified `users` (search_path, which the client sets, picks its schema)'),
      tables_read: z.array(z.string().min(1)).nonempty().optional().describe("the same, over only the tables a statement reads (also through a built-in handed the table, its schema or the database as a value: `table_to_xml('vault', …)` reads `vault`, `schema_to_xml('s', …)` `s.*`, `database_to_xml(…)` and a name only known at run time `*`; reading the planner's statistics, `pg_stats`, reads `*`). To a `deny` or `hold` rule a write that returns or tests the rows it changes reads them too: locked rows (`SELECT … FOR UPDATE`), the target of UPDATE/DELETE/MERGE and `INSERT … ON CONFLICT`, the tables a new view reads, an index or ALTER TABLE evaluating an expression on every row (an error quotes the row), a table joining a parent or attached as a partition, one a trigger, rule or row security policy is created on"),
      tables_written: z
        .array(z.string().min(1))
        .nonempty()
        .optional()
        .describe('the same, over only the tables a statement changes (rows, definition, privileges or locks: the target of INSERT/UPDATE/DELETE/MERGE/COPY FROM/TRUNCATE/ALTER/DROP/LOCK (in a mode above ROW SHARE)/CREATE INDEX/GRANT, every relation in the FROM of a `SELECT … FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE` (an `OF` list is not narrowed to), a parent a new child or partition joins or leaves (`INHERITS`, `ALTER TABLE … [NO] INHERIT`), the sequence `nextval` or `setval` is handed (`*` when it is not a constant), the tables a new view reads, since a view is a write path to them). Example: `{ id: audit-append-only, action: deny, match: { sql: { tables_written: [audit_log], statements: [UpdateStmt, DeleteStmt, TruncateStmt, DropStmt] } } }`'),
      without_where: z.literal(true).optional().describe('`true`: only an `UPDATE` or `DELETE` without a `WHERE` clause matches'),
    })
    .refine(
      (s) => Object.values(s).some((v) => v !== undefined),
      'expected at least one of statements, effects, tables, tables_read, tables_written, without_where',
    )
    .optional()
    .describe('conditions on the parsed SQL (see *SQL conditions* below): an `allow` rule\'s must cover everything in the statement, a `deny` or `hold` rule\'s match when anything listed appears'),
  kubernetes: z
    .strictObject({
      verbs: z
        .array(z.enum(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection', '*']))
        .nonempty()
        .optional()
        .describe('RBAC verbs; `delete` also matches `deletecollection`, the deletion of many. A `deny` or `hold` rule also matches requests of the same effect: `create pods/eviction` as `delete pods`; a write of `pods/ephemeralcontainers` (`kubectl debug`) and any `nodes/proxy` request (the kubelet\'s exec, any namespace) as `create pods/exec`; any `pods/proxy` or `services/proxy` request (HTTP to the pods\' ports) as `create pods/portforward`; the old `/api/v1/proxy/…` paths like the subresources they spell; a server-side apply (a patch with an `application/apply-patch+…` body) and an update of a resource whose update creates (`services` and their `status`, `endpoints`, `events`, `limitranges`, `leases`, `runtimeclasses`, RBAC roles and bindings) as `create` of the resource, since either creates the object when none is stored; and every request whose answer carries the object as a read of it: `update`, `patch`, `delete` as `get`, `deletecollection` as `list`, any verb on a subresource answering with the whole object (`status`, and any but `scale`, `eviction`, `binding`, `token`, `log`, `exec`, `attach`, `portforward`, `proxy`) as `get` of the resource'),
      resources: z.array(z.string().min(1)).nonempty().optional().describe('resource globs such as `pods/exec`, `secrets`'),
      namespaces: z.array(z.string()).nonempty().optional().describe('namespace globs. A `deny` or `hold` rule also matches a list, watch or deletecollection across all namespaces (it reaches the named ones); an `allow` rule never does'),
      privilege: z
        .array(z.enum([...K8S_PRIVILEGE_FACTS, '*']))
        .nonempty()
        .optional()
        .describe('privilege facts, or `"*"` for any: `escalate` role writes, `bind` binding writes, `impersonate`, `serviceaccount` writes, `token` (`serviceaccounts/token`, a service-account-token Secret), `csr`, `csr-approval`, `finalize` (`namespaces/finalize`), `finalizers` (a patch or update setting `metadata.finalizers`), `webhook` (admission webhook configurations, APIService registrations, a CRD write naming its conversion: the API server then sends what it serves, Secrets included, to an address the writer chooses), `admission-policy` (a Validating- or MutatingAdmissionPolicy or a binding of one: CEL the API server runs on everyone\'s requests with any object, a Secret included, as its parameters, answering in messages or writing into objects the writer can read), `trust-bundle` (a ClusterTrustBundle created or changed: CA certificates the cluster\'s pods mount and trust), `host` (a pod, or a workload\'s pod template, given the node: its PID, IPC or network namespace, a privileged container, added capabilities, an unmasked /proc, a host path mounted; `kubectl debug node/…`. A `deny` or `hold` rule on `create pods/exec` matches it too, in any namespace)'),
      unreadable_body: z
        .literal(true)
        .optional()
        .describe('`true`: only a request whose body Agate cannot read matches (`attributes.body: unreadable`: a media type other than JSON, YAML or protobuf such as CBOR, any `Content-Encoding`, YAML it cannot parse or that the API server reads as YAML 1.1 otherwise (merge keys, tags), JSON with a key repeated in one object). Such a request is refused (rule `agate.unverifiable`) unless an allow rule with this condition matches it, whatever the policy default'),
      paths: z
        .array(z.string().regex(/^\//, 'expected a path glob such as /metrics or /debug/*'))
        .nonempty()
        .optional()
        .describe('globs over the path of a non-resource request (`/metrics`, `/logs/*`, `/debug/*`; `*` spans `/`), which no other condition names: a rule with `paths` matches only non-resource requests (its `verbs` are then the lower-cased method: `get`, `delete`, …), and a rule without never does. A `deny` or `hold` rule also matches the path with repeated slashes collapsed and without its trailing slash'),
    })
    .refine((k) => k.paths === undefined || (k.resources === undefined && k.namespaces === undefined && k.privilege === undefined && k.unreadable_body === undefined), 'expected paths alone (with verbs at most): a non-resource request has no resource, namespace, privilege or body to match')
    .optional()
    .describe('Kubernetes API requests, matched against the request descriptor the Kubernetes proxy records (attributes `verb`, `resource`, `subresource`, `namespace`, `privilege`); a Kubernetes rule never matches a command without one. An upgraded stream whose input Agate relays unrecorded (exec or attach with `stdin` over SPDY or base64 channels, port-forward, a proxy: `attributes.input: unrecorded`) opens only by an `allow` rule with this condition that matches it, never by `default: allow` (rule `agate.unrecorded-input`); exec and attach over a WebSocket with binary channels (kubectl\'s default) are read and recorded channel by channel (`attributes.input: recorded`) and decided like any request'),
  ssh: z
    .strictObject({
      requests: z
        .array(z.enum(['exec', 'shell', 'shell-line', 'screen-line', 'sftp', 'direct-tcpip', 'tcpip-forward', 'auth-agent', 'git-push']))
        .nonempty()
        .optional()
        .describe('`exec`, `shell`, `shell-line` (a command a captured shell runs, or a line typed in a shell), `screen-line` (the keys typed into a full-screen program up to an Enter: where the policy has shell rules, refused unless an `allow` rule names `screen-line`), `sftp`, `direct-tcpip` (`-L`), `tcpip-forward` (`-R`), `auth-agent` (`-A`), `git-push` (a push\'s ref updates). Forwarding opens only by an `allow` rule that matches it, never by the policy default'),
      operations: z
        .array(z.enum(['read', 'write', 'remove', 'rename', 'mkdir', 'rmdir', 'setstat', 'symlink']))
        .nonempty()
        .optional()
        .describe('sftp operations: `read` and `write` (an open for reading or writing), `remove`, `rename`, `mkdir`, `rmdir`, `setstat`, `symlink` (a hard link too). A `deny` or `hold` rule naming `read` or `write` also matches a rename or hard link of the paths it names: the file is read or written under its new path'),
      paths: z
        .array(z.string().min(1))
        .nonempty()
        .optional()
        .describe('globs over the sftp paths (either path of a rename or link), the `host:port` of a `-L` tunnel or the `host:port` a `-R` listener was asked for, each host in one canonical spelling (`127.1`, `localhost` → `127.0.0.1`; for `-R`, every spelling of all interfaces — empty, `*`, `0.0.0.0`, `[::]` — is `0.0.0.0`). Example: `{ id: etc-read-only, action: deny, match: { ssh: { operations: [write, remove, rename, setstat], paths: ["/etc/*"] } } }`'),
    })
    .refine((s) => s.requests !== undefined || s.operations !== undefined || s.paths !== undefined, 'expected at least one of requests, operations, paths')
    .optional()
    .describe('SSH requests other than command lines: interactive shells, file operations (sftp), port and agent forwarding; every listed condition must match'),
  git: z
    .strictObject({
      repositories: z.array(z.string().min(1)).nonempty().optional().describe('globs over the repository path as the client named it (`/srv/git/app.git`), also tried without a trailing `.git`'),
      refs: z.array(z.string().min(1)).nonempty().optional().describe('globs over full ref names: `refs/heads/main`, `refs/tags/*`'),
      actions: z.array(z.enum(['create', 'update', 'delete'])).nonempty().optional().describe('`create` (from nothing), `update` (an existing ref moves), `delete`'),
      forced: z
        .boolean()
        .optional()
        .describe('`true`: an update that is not a fast-forward, or that Agate cannot prove is one (fail closed); `false`: only an update proven fast-forward, or a create or delete. Example: `{ id: no-force-push, action: deny, match: { git: { refs: ["refs/heads/*"], forced: true } } }`'),
    })
    .refine((g) => g.repositories !== undefined || g.refs !== undefined || g.actions !== undefined || g.forced !== undefined, 'expected at least one of repositories, refs, actions, forced')
    .optional()
    .describe('the ref updates of a `git push` over ssh: matches when one update meets every condition given; the push is decided as a whole (any deny refuses it all)'),
  shell: z
    .strictObject({
      commands: z.array(z.string().min(1)).nonempty().optional().describe("program names, compared with the basename of the command's argv[0] (globs allowed)"),
      flags: z
        .array(z.string().regex(/^--?[^-\s]/, 'expected a flag such as -r or --force'))
        .nonempty()
        .optional()
        .describe('flags that must all be present, in canonical form: `-r` matches `-rf`, `-R`, `--recursive`'),
      args: z.array(z.string().min(1)).nonempty().optional().describe('globs over the operands (non-flag arguments): matches when any operand matches one'),
      download_to_interpreter: z.literal(true).optional().describe('`true`: only an interpreter running downloaded code matches (`curl … | sh`, `bash <(wget …)`)'),
      evaluates_names: z
        .literal(true)
        .optional()
        .describe('`true`: only a command of a line in which bash evaluates a value as arithmetic or a variable name matches (`$((x))`, `(( i++ ))`, `[[ $n -gt 0 ]]`, `${a[i]}`); such a line is refused unless the `allow` rule deciding it names this, since an array subscript in the value runs the command substitution it holds, unseen. Example: `{ id: loops, action: allow, match: { shell: { commands: [echo, test], evaluates_names: true } } }`'),
    })
    .refine((s) => s.commands !== undefined || s.download_to_interpreter !== undefined || s.evaluates_names !== undefined, 'expected commands, download_to_interpreter or evaluates_names')
    .optional()
    .describe('shell command lines (ssh exec lines and lines typed in a shell), parsed with bash\'s grammar: matches when one simple command (in a pipeline, list, subshell, substitution, `sh -c`/`eval` string or behind a wrapper such as sudo or xargs) meets every condition given; see *Shell rules* in docs/proxies.md'),
});

export const APPROVAL_WEBHOOK_EVENTS = ['approval.requested', 'approval.decision', 'approval.refused', 'approval.resolved'] as const;

/** A receiver of signed approval notifications; the secret is named, never written in the file. */
const approvalWebhook = z
  .strictObject({
    url: z.url().refine((u) => /^https?:/.test(u), 'expected an http(s) URL').describe('`http(s)` URL POSTed to'),
    secret_env: z.string().min(1).optional().describe('the environment variable holding the HMAC secret; exactly one of this and `secret_file`, read at start (a missing one stops startup)'),
    secret_file: z.string().min(1).optional().describe('the file holding the HMAC secret (trailing newline ignored)'),
    events: z.array(z.enum(APPROVAL_WEBHOOK_EVENTS)).nonempty().default([...APPROVAL_WEBHOOK_EVENTS]).describe('the notifications this receiver gets'),
    max_attempts: z.number().int().min(1).max(20).default(6).describe('deliveries tried per notification before it is given up (logged)'),
    queue_size: z.number().int().min(1).max(100_000).default(1000).describe('notifications waiting for this receiver; past it the oldest is dropped (logged)'),
    timeout_ms: duration.default(5000).describe('per-request timeout'),
  })
  .refine((w) => (w.secret_env === undefined) !== (w.secret_file === undefined), 'expected exactly one of secret_env, secret_file');

/** With `action: hold`: who may release the command, how many of them, and for how long. */
const approval = z.strictObject({
  approvers: z
    .strictObject({ claims: globs.default({}).describe("claim globs (as in `match.claims`) an approver's token must carry, besides the approver role") })
    .prefault({}),
  required: z.number().int().min(1).max(10).default(1).describe('distinct approvers needed'),
  timeout_s: z.number().positive().max(86_400).default(300).describe('seconds before the held command is refused'),
  allow_self_approval: z.boolean().default(false).describe('whether the identity that ran the command may approve it'),
});

const rule = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'expected a lower-case id such as no-drop').describe('names the rule in verdicts and the audit trail'),
  action: z.enum(['allow', 'deny', 'hold']).describe('what a match decides'),
  approval: approval
    .optional()
    .describe('only on `hold` rules (defaults apply when omitted). The command waits (a PostgreSQL client gets a NOTICE naming the approval id) until `required` distinct approvers approve it through the query API or `agate approve`, one denies it, or `timeout_s` passes (then it is refused). Every step is in the ledger: `ApprovalRequested`, each `ApprovalDecision`, the final `Verdict`'),
  message: z.string().optional().describe('shown to the client with a refusal'),
  match: ruleMatch.prefault({}).describe('conditions that must all hold; none matches everything'),
  mask_client: maskClient
    .default(false)
    .describe('only on `allow` rules: `true` (the audit set) or a set name; the verdict becomes `mask` (with `mask_set`) and the results reach the client masked. A verdict naming an unknown set refuses the statement'),
});

/**
 * Query API roles come from one claim of the bearer token. Its value (a string, or a JSON list of
 * strings) is matched against each role's globs; a token may hold several roles. A token that
 * holds none gets `default_role`, `none` unless set: an agent's own CI token reads nothing.
 */
const queryRoles = z.strictObject({
  claim: z.string().min(1).default('agate_role').describe('the claim holding role names (a string or a JSON list)'),
  default_role: z
    .enum(['none', 'analyst', 'auditor', 'approver', 'admin'])
    .default('none')
    .describe('role of a token whose claim is absent or matches no glob; `none` refuses such tokens'),
  analyst: z.array(z.string()).default(['analyst']).describe('globs of claim values granting the analyst role (read, SQL, export, verify, see approvals)'),
  auditor: z.array(z.string()).default(['auditor']).describe('globs of claim values granting the auditor role (read, export, verify, see approvals; no SQL)'),
  approver: z.array(z.string()).default(['approver']).describe('globs of claim values granting the approver role (the approvals asked of it, nothing else)'),
  admin: z.array(z.string()).default(['admin']).describe('globs of claim values granting the admin role (what an analyst may)'),
});

/** Limits the engine applies to every analyst SQL query (ClickHouse settings of the same names). */
const querySql = z.strictObject({
  max_execution_time_s: z.number().positive().max(3600).default(10).describe('analyst SQL: seconds before the engine stops a query'),
  max_result_rows: z.number().int().min(1).max(100_000_000).default(100_000).describe('analyst SQL: result rows before the engine stops a query'),
  max_memory_bytes: z.number().int().min(1 << 20).default(1 << 30).describe('analyst SQL: memory before the engine stops a query'),
  sandbox: z
    .enum(['namespaces', 'off'])
    .default('namespaces')
    .describe("embedded engine: run each analyst request in a sandboxed process (user, mount, PID and network namespaces; SECURITY.md *Analyst SQL*). If the sandbox cannot be set up, analyst SQL answers 503 `SQL_SANDBOX_UNAVAILABLE`. `off` runs analyst SQL inside Agate's process, leaving the allow-list as the only barrier between an analyst and Agate's keys; Agate logs a warning at every start. Ignored with a ClickHouse server store"),
});

const queryExport = z.strictObject({
  hec_token: secret.optional().describe('token for a Splunk HTTP Event Collector; `agate export --to hec URL` reads it here or from `AGATE_HEC_TOKEN`'),
});

/**
 * Every listener (PostgreSQL, SSH, Kubernetes, the query API): how long a connection may take to
 * log in, how many may be logging in at once, and how repeated failures from one address are
 * slowed down.
 */
const logins = z.strictObject({
  timeout_ms: z
    .number().int().min(100).max(600_000)
    .default(10_000)
    .describe("every listener (PostgreSQL, SSH, Kubernetes, query API): a connection that has not logged in by then is closed (PostgreSQL: FATAL `57014`, its authentication_timeout) and recorded as `AuthenticationFailed` `AUTH_TIMEOUT`; see *Logins* below"),
  max_pending: z
    .number().int().min(1).max(100_000)
    .default(64)
    .describe('per listener, connections still logging in, counted apart from sessions; past it the oldest one of the address holding the most is closed for the newcomer (`AUTH_EVICTED`)'),
  throttle: z
    .strictObject({
      max_failures: z.number().int().min(0).default(20).describe('failed logins from one address within `window_s` that get it refused; `0` turns throttling off'),
      window_s: z.number().int().min(1).max(86_400).default(60).describe('the window failed logins are counted in'),
      block_s: z.number().int().min(1).max(86_400).default(10).describe('the first refusal period; each further one for the same address doubles, up to `max_block_s`'),
      max_block_s: z.number().int().min(1).max(604_800).default(900).describe('the longest refusal period'),
    })
    .refine((t) => t.max_block_s >= t.block_s, 'expected max_block_s >= block_s')
    .prefault({}),
});

/**
 * The ops listener (`/healthz`, `/readyz`, `/metrics`) and how a stop drains. Off unless `listen`
 * is set: several `agate` processes on one host (`npm run stack`, the test suites) share one
 * config, and a default port would make all but the first fail to start. The Helm chart sets it.
 */
const ops = z.strictObject({
  listen: hostPort
    .optional()
    .meta({ docDefault: 'off' })
    .describe('the ops listener (`/healthz`, `/readyz`, `/metrics`), served by every `agate` process; off by default because several processes on one host may share a config (`npm run stack`). The Helm chart sets `0.0.0.0:9464`. No authentication: bind it where only the orchestrator and Prometheus reach'),
  drain_timeout_ms: z
    .number().int().min(0).max(3_600_000)
    .default(25_000)
    .describe("on SIGTERM the proxies stop accepting and close each session once no statement is in flight; sessions still busy after this long are closed anyway. Keep it below the orchestrator's grace period (Kubernetes: terminationGracePeriodSeconds, 30 s by default)"),
});

/**
 * Trace export (OpenTelemetry). Off unless `otlp.endpoint` is set: the proxy, policy and ledger
 * then record a span per command each, linked through the W3C trace context the command's events
 * carry (`trace_parent`), and export them over OTLP/HTTP.
 */
const telemetry = z.strictObject({
  otlp: z
    .strictObject({
      endpoint: z
        .url({ protocol: /^https?$/ })
        .optional()
        .meta({ docDefault: 'off' })
        .describe('OTLP/HTTP base URL of a collector, e.g. `http://otel-collector:4318` (spans go to `/v1/traces`, protobuf-encoded); unset, no spans are made and nothing is exported. Export happens in batches off the request path; spans are dropped, never queued without bound, while the collector is away'),
      headers: z
        .record(z.string().regex(/^[A-Za-z0-9-]+$/, 'expected an HTTP header name'), secret)
        .default({})
        .describe('HTTP headers sent with every export (a collector\'s credentials), each a secret reference read at start'),
      service_name: z
        .string().min(1)
        .default('agate')
        .describe('the `service.name` of the exported spans (`service.instance.id` is `instance_id`)'),
    })
    .prefault({}),
});

/**
 * SAML 2.0 sign-in to the console (SP-initiated: HTTP-Redirect AuthnRequest, HTTP-POST response),
 * and single logout when `slo_url` is set. Only signed assertions from `idp_entity_id`, for
 * `sp_entity_id`, answering a request this service made, are accepted. Attributes become claims
 * (a multi-valued one a JSON list). The IdP is described either by its metadata URL (fetched at
 * start and refreshed) or by its SSO URL and a PEM certificate file; a certificate file, when
 * given, is pinned: it alone is trusted even with metadata.
 */
const consoleSaml = z.strictObject({
  /** The IdP's entityID, the Issuer its assertions must carry (its metadata's EntityDescriptor entityID). */
  idp_entity_id: z.string().min(1).describe('the IdP\'s entityID, the Issuer its assertions must carry (and, with `idp_metadata_url`, the metadata\'s entityID)'),
  idp_metadata_url: z.url().optional().describe('the IdP\'s SAML metadata: its SSO and SLO locations (HTTP-Redirect) and signing certificates are taken from it; fetched at start (a failure stops the start) and every `metadata_refresh_s` (a failure keeps the last good metadata); `https` unless on loopback'),
  metadata_refresh_s: duration.min(60).max(7 * 24 * 3600).default(3600).describe('how often `idp_metadata_url` is fetched again'),
  /** The IdP's SingleSignOnService location for the HTTP-Redirect binding. */
  idp_sso_url: z.url().optional().describe('the IdP\'s SingleSignOnService location for the HTTP-Redirect binding; required without `idp_metadata_url`, and wins over it'),
  idp_slo_url: z.url().optional().describe('the IdP\'s SingleLogoutService location for the HTTP-Redirect binding; default from the metadata; needed for single logout'),
  /** PEM file of the IdP's signing certificate(s) (one or more CERTIFICATE blocks); assertions signed by another key are refused. */
  idp_cert_file: z.string().min(1).optional().describe('PEM file of the IdP\'s signing certificate(s), pinned: assertions and logout messages signed by another key are refused, even if the metadata names it; read at each check; required without `idp_metadata_url`'),
  /** This service's entityID as registered at the IdP; assertions must name it as their Audience. */
  sp_entity_id: z.string().min(1).describe('this service\'s entityID as registered at the IdP; assertions must name it as their Audience'),
  /** Where the IdP posts the response: this service's origin followed by /ui/saml/acs. */
  acs_url: z.url().refine((u) => new URL(u).pathname === '/ui/saml/acs', 'expected a URL whose path is /ui/saml/acs').describe('where the IdP posts the response: this service\'s origin plus `/ui/saml/acs`'),
  slo_url: z
    .url()
    .refine((u) => new URL(u).pathname === '/ui/saml/slo', 'expected a URL whose path is /ui/saml/slo')
    .optional()
    .describe('turns on single logout: this service\'s origin plus `/ui/saml/slo`, registered at the IdP as the SP\'s SingleLogoutService (HTTP-Redirect for the browser, HTTP-POST for back-channel); needs `sp_signing`'),
  sp_signing: z
    .strictObject({
      key: secret.describe('the PEM private key this service signs its SAML requests and LogoutResponses with'),
      cert_file: z.string().min(1).describe('PEM file of the matching certificate, published in the SP metadata for the IdP to check the signatures'),
    })
    .optional()
    .describe('this service\'s signing key: LogoutRequests and LogoutResponses (HTTP-Redirect binding, RSA-SHA256) and AuthnRequests are signed with it'),
  /** Clock difference tolerated when checking NotBefore / NotOnOrAfter. */
  clock_skew_s: z.number().int().min(0).max(600).default(60).describe('clock difference tolerated when checking NotBefore / NotOnOrAfter'),
})
  .refine((c) => c.idp_metadata_url !== undefined || (c.idp_sso_url !== undefined && c.idp_cert_file !== undefined), 'expected idp_metadata_url, or idp_sso_url with idp_cert_file')
  .refine((c) => c.slo_url === undefined || c.sp_signing !== undefined, 'expected sp_signing with slo_url (logout messages are signed)')
  .refine((c) => c.slo_url === undefined || c.idp_slo_url !== undefined || c.idp_metadata_url !== undefined, 'expected idp_slo_url or idp_metadata_url with slo_url (where to send the LogoutRequest)');

/**
 * The web console (served by the query service under /ui/): humans sign in with OIDC
 * (authorization code + PKCE) or SAML 2.0 at their own identity provider, never with an
 * agent's token. Roles come from the ID token's claims or the SAML attributes exactly as
 * `query.roles` maps a bearer token's.
 */
const consoleSection = z.strictObject({
  oidc: z.strictObject({
    issuer: z.url().describe('the people\'s OIDC provider (discovery at `ISSUER/.well-known/openid-configuration`); `https` unless on loopback'),
    client_id: z.string().min(1).describe("the console's client at the provider"),
    client_secret: secret.optional().describe("a confidential client's secret; omit for a public client"),
    redirect_url: z
      .url()
      .refine((u) => new URL(u).pathname === '/ui/callback', 'expected a URL whose path is /ui/callback')
      .describe("where the provider sends the browser back: this service's origin plus `/ui/callback`, as registered at the provider"),
    scopes: z.array(z.string().min(1)).default(['openid', 'profile', 'email']).describe('scopes asked for'),
  }).optional().describe('OpenID Connect sign-in (authorization code with PKCE)'),
  saml: consoleSaml.optional().describe('SAML 2.0 sign-in (SP-initiated, signed assertions required) and single logout'),
  roles: queryRoles.prefault({}).describe("a person's roles from the ID token's claims, mapped as `query.roles` maps a bearer token's"),
  session_ttl_s: duration.max(7 * 24 * 3600).default(8 * 3600).describe('a console session ends this long after sign-in'),
});

export const configSchema = z.strictObject({
  instance_id: z
    .string()
    .default(() => `${hostname()}-${process.pid}`)
    .meta({ docDefault: '`HOST-PID`' })
    .describe('names this proxy instance in events'),
  data_dir: z.string().default('.agate').describe('event log, embedded store, dev-issuer key'),
  log_level: z.enum(['debug', 'info', 'warn', 'error']).default('info').describe('logs never carry SQL, tokens or secrets'),
  identity: z.strictObject({
    issuers: z.array(issuer).default([]).describe('trusted OIDC issuers'),
    session_grace_s: z
      .number().int().min(0).max(7 * 86400)
      .default(0)
      .describe("how long a PostgreSQL or SSH session, or a Kubernetes watch or stream, may stay open past its token's `exp`; then Agate ends it (`SessionClosed` reason `token expired`). Raise it for jobs whose sessions outlive their CI token"),
    dev_issuer: z
      .strictObject({
        enabled: z.boolean().default(false).describe('the dev-only built-in token issuer, for local trials; never in production'),
        audience: z.string().default('agate').describe("its tokens' audience"),
        token_ttl_s: duration.default(3600).describe('its default token lifetime'),
      })
      .prefault({}),
  }),
  bus: withKind('local', z
    .discriminatedUnion('kind', [
      z.strictObject({
        kind: z.literal('local'),
        fsync: z.boolean().default(true).describe('fsync every append (write-ahead)'),
        segment_bytes: z.number().int().min(64 * 1024).max(1 << 30).default(64 * 1024 * 1024).describe('the log is kept in segments of this many bytes; a start scans only the last one'),
        retention_ms: z.number().int().min(-1).default(3_600_000).describe('a full segment is deleted once every consumer group has committed past it and it was sealed this long ago (1 hour; `-1`: never); the ledger is the lasting record'),
      }),
      z.strictObject({
        kind: z.literal('kafka'),
        brokers: z.array(hostPort).nonempty().describe('the Kafka brokers to bootstrap from'),
        events_topic: z.string().default('agate.events').describe('created at start when missing'),
        verdicts_topic: z.string().default('agate.verdicts').describe('created at start when missing; keeps a day'),
        group_prefix: z
          .string()
          .regex(/^[A-Za-z0-9._-]+$/, 'expected letters, digits, dots, dashes or underscores')
          .optional()
          .meta({ docDefault: '`agate` for the default topic, else the events topic' })
          .describe("prefix of this deployment's consumer groups; two deployments on one Kafka need different topics or prefixes"),
        proxy_lease_ms: z.number().int().min(1_000).default(10_000).describe("how long a proxy's verdict group must stay without a member (the broker drops a member 10 s after its last heartbeat) before the ledger closes that proxy's open sessions as `proxy lease expired`"),
        partitions: z.number().int().min(1).default(6).describe('partitions of a topic Agate creates (at start when missing, or with `agate topics`); the ledger keeps one hash chain per partition'),
        replication_factor: z.number().int().min(1).default(3).describe('replication factor of a topic Agate creates'),
        tls: clientTls.optional().describe("TLS to the brokers (a `SSL` or `SASL_SSL` listener); the broker's certificate and name are always verified"),
        sasl: z
          .strictObject({
            mechanism: z.enum(['scram-sha-512', 'scram-sha-256', 'plain']).describe('`plain` is refused without `bus.tls`: it sends the password as is'),
            username: z.string().min(1).describe('the SASL user'),
            password: secret.describe('the SASL password'),
          })
          .optional()
          .describe('SASL login to the brokers'),
        min_insync_replicas: z
          .number().int().min(1)
          .optional()
          .meta({ docDefault: 'min(2, RF)' })
          .describe('`min.insync.replicas` of both topics: with `acks=all`, an acknowledged event is on this many brokers; more than the replication factor is refused'),
        retention_ms: z
          .number().int().min(-1)
          .default(604_800_000)
          .describe('`retention.ms` of the events topic (7 days; `-1`: forever); the ledger is the lasting record, so this bounds how long a ledger may be down'),
        schema_registry: z
          .strictObject({
            url: z.url().describe('Confluent-compatible registry API, e.g. `http://host:8080/apis/ccompat/v7`'),
            username: z.string().optional().describe('HTTP basic user (Confluent `USER_INFO`), with `password`; or use `token`, not both'),
            password: secret.optional().describe('HTTP basic password'),
            token: secret.optional().describe('a bearer token sent with every registry call'),
            tls: clientTls.optional().describe('TLS to the registry'),
          })
          .refine((r) => (r.username === undefined) === (r.password === undefined), 'expected both username and password, or neither')
          .refine((r) => r.token === undefined || r.username === undefined, 'expected either username/password or token, not both')
          .optional()
          .describe('a Confluent-compatible schema registry: events travel in the Confluent wire format'),
      }),
    ]))
    .prefault({ kind: 'local' })
    .describe('`local` (embedded, one process) or `kafka`'),
  store: withKind('embedded', z
    .discriminatedUnion('kind', [
      z.strictObject({ kind: z.literal('embedded'), path: z.string().optional().meta({ docDefault: '`DATA_DIR/store`' }).describe("the embedded engine's data directory") }),
      z.strictObject({
        kind: z.literal('clickhouse'),
        url: z.url().describe('HTTP endpoint of the server'),
        username: z.string().default('default').describe('the ClickHouse user'),
        password: secret.optional().describe('its password'),
        tls: clientTls.optional().describe("with an `https://` URL: the CA (default the system's) and a client certificate"),
      }),
    ]))
    .default({ kind: 'embedded' })
    .describe('`embedded` (chdb) or `clickhouse` (a server, 25.8+)'),
  proxy: z
    .strictObject({
      postgres: z
        .strictObject({
          listen: hostPort.default('127.0.0.1:6432').describe('PostgreSQL proxy address'),
          max_message_bytes: z.number().int().min(1024).max(1 << 30).default(16 << 20).describe('a longer client or server frame is a protocol error'),
          max_connections: z
            .number().int().min(1)
            .default(1000)
            .describe('logged-in sessions; further clients are refused with SQLSTATE 53300 (connections still logging in count against `logins.max_pending` instead)'),
          record_rows: z.number().int().min(0).max(1000).default(10).describe('rows (or COPY lines) of each result kept, masked, in its `Response` event'),
          record_value_chars: z.number().int().min(8).max(65536).default(256).describe('each recorded value (and bound parameter) is cut to this many characters, after masking'),
          tls: z
            .strictObject({ cert: z.string().describe('PEM file'), key: z.string().describe('PEM file') })
            .optional()
            .describe('with it Agate accepts `SSLRequest` and terminates TLS (`sslmode=require` / `verify-full`)'),
        })
        .prefault({}),
      ssh: z
        .strictObject({
          listen: hostPort.default('127.0.0.1:2222').describe('SSH proxy address'),
          host_key_file: z.string().describe("the proxy's own host key (OpenSSH or PEM); an ed25519 key is generated there (mode 0600) on first start"),
          max_connections: z.number().int().min(1).default(100).describe('further clients are disconnected before the handshake'),
          authorized_keys: z
            .array(
              z.strictObject({
                key: z
                  .string()
                  .regex(/^(ssh-[a-z0-9-]+|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}( .*)?$/, 'expected a public key such as "ssh-ed25519 AAAA…"')
                  .describe('as in an authorized_keys file: `ssh-ed25519 AAAA… [comment]`'),
                subject: z.string().min(1).describe("the identity's subject (`sub`); its issuer is `agate:ssh-public-key`"),
                claims: z.record(z.string(), z.string()).default({}).describe('claims policy rules can match, as for a token (`repository`, `environment`, …), plus `key_fingerprint` (`SHA256:…`)'),
              }),
            )
            .default([])
            .describe('public keys that log in without a token, each standing for one identity. An unknown key or a bad signature is refused and recorded as `AuthenticationFailed` (`AUTH_KEY_UNKNOWN`, `AUTH_KEY_SIGNATURE_INVALID`) naming the key\'s fingerprint'),
        })
        .optional()
        .describe('the SSH proxy; it runs only when this section is present'),
      verdict_timeout_ms: duration.default(2000).describe('deadline for a verdict; past it the command is refused'),
    })
    .prefault({}),
  logins: logins.prefault({}),
  targets: z
    .array(target)
    .default([])
    .describe('the databases, hosts and clusters behind Agate'),
  masking: z
    .strictObject({
      sets: z
        .record(maskSetName, maskSet)
        .default({})
        .describe('named mask sets; `default` is built in (`columns: [*password*, *passwd*, *secret*, *token*, *api_key*, *apikey*, *private_key*, card_number, ssn]` and every detector) unless redefined here'),
      audit: maskSetName.default('default').describe('the set always applied to recorded content (samples, parameters, SQL text, errors)'),
    })
    .prefault({}),
  approvals: z
    .strictObject({ webhooks: z.array(approvalWebhook).default([]).describe('receivers of signed notifications about held commands; see *Approval webhooks* in docs/approvals.md') })
    .prefault({}),
  policy: z
    .strictObject({
      default: z.enum(['allow', 'deny']).default('deny').describe('decision when no rule matches'),
      rules: z.array(rule).default([]).describe('tried top to bottom; the first rule whose conditions all match decides'),
      reload_ms: z
        .number().int().min(0).max(3_600_000)
        .default(1000)
        .describe("the policy service re-reads the config file's policy this often when the file changed; a file that does not load is refused (the error, with file, line and key, goes to the log) and the policy in force stays; `0` turns reload off"),
    })
    .prefault({}),
  ledger: z
    .strictObject({
      origin: z
        .string()
        .regex(/^[^\s+]+$/, 'expected a name without spaces or +, e.g. agate.example.com/ledger')
        .default('agate.local/ledger')
        .describe("the log's name: the checkpoint key's name; each chain's checkpoint origin is `ORIGIN/CHAIN`"),
      signing_key: z.string().optional().meta({ docDefault: '`DATA_DIR/ledger/checkpoint.key`' }).describe('Ed25519 signer key (note format, mode 0600): generated on first start on the embedded bus; on Kafka it must exist, one key for every ledger instance, and a key that did not sign the stored checkpoints refuses to start'),
      checkpoint: z
        .strictObject({
          every_events: z.number().int().min(1).default(10_000).describe('sign a checkpoint after this many new records (or `every_ms`, whichever comes first, and at every block of 2^20 records)'),
          every_ms: duration
            .default(10_000)
            .describe('… or after this long. A checkpoint costs about 20 ms of store work (two small inserts), so at 12,000 events/s the defaults cost about 2.5 % of one core'),
          dir: z
            .string()
            .optional()
            .describe('write every checkpoint to `DIR/CHAIN/SIZE.checkpoint` (once, never replaced) and `latest.checkpoint` (only moves forward); put it outside the store: the ledger checks the store against it at start'),
          webhook: z.url().optional().describe('POST every checkpoint (text/plain) to this URL; failures are logged, not fatal'),
        })
        .prefault({}),
      retention_days: z
        .number().int().min(1)
        .optional()
        .describe('whole blocks of 2^20 records are dropped once all their records are older than this many days and a checkpoint at the block\'s end is stored; unset keeps everything'),
      dedup_window: z
        .number().int().min(1000)
        .default(100_000)
        .describe('latest event ids remembered to drop an event delivered twice under new bus positions (replays from an older position are recognised by position, whatever their length)'),
    })
    .prefault({}),
  query: z
    .strictObject({
      listen: hostPort.default('127.0.0.1:7480').describe('query API address'),
      tls: z
        .strictObject({ cert: z.string().describe('PEM file'), key: z.string().describe('PEM file') })
        .optional()
        .describe('the query API serves HTTPS; the CLI then calls `https://` (trust a private CA with `NODE_EXTRA_CA_CERTS`)'),
      require_claims: globs.default({}).describe('claims a bearer token must carry to read the audit trail (globs, as in policy)'),
      roles: queryRoles.prefault({}),
      sql: querySql.prefault({}),
      export: queryExport.prefault({}),
    })
    .prefault({}),
  ops: ops.prefault({}),
  telemetry: telemetry.prefault({}),
  console: consoleSection.optional().describe('the web console under `/ui/` of the query service (people sign in with OIDC); absent, `/ui/` answers 404'),
});

/** A config as parseConfig returns it: paths resolved, and the signing key's default filled in. */
export type AgateConfig = z.infer<typeof configSchema> & { source: string; ledger: { signing_key: string } };
export type PostgresTargetConfig = z.infer<typeof postgresTarget>;
export type SshTargetConfig = z.infer<typeof sshTarget>;
export type KubernetesTargetConfig = z.infer<typeof kubernetesTarget>;
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
export type TelemetryConfig = z.infer<typeof telemetry>;
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
  const signingKey = abs(cfg.ledger.signing_key ?? join(cfg.data_dir, 'ledger', 'checkpoint.key'));
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
  for (const w of cfg.approvals.webhooks) if (w.secret_file !== undefined) w.secret_file = abs(w.secret_file);
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
  const saml = cfg.console?.saml;
  if (saml !== undefined) {
    if (saml.idp_cert_file !== undefined) saml.idp_cert_file = abs(saml.idp_cert_file);
    if (saml.sp_signing !== undefined) {
      saml.sp_signing.cert_file = abs(saml.sp_signing.cert_file);
      if (saml.sp_signing.key.file !== undefined) saml.sp_signing.key.file = abs(saml.sp_signing.key.file);
    }
  }
  if (cfg.console !== undefined) {
    if (cfg.console.oidc === undefined && cfg.console.saml === undefined) throw new ConfigError(`${source}: console: expected an identity provider (console.oidc, console.saml or both)`);
    // Sign-in over plain HTTP would expose the code, tokens or assertion; only a loopback provider (tests, a laptop) may use it.
    const plain = (url: string, key: string) => {
      const u = new URL(url);
      if (u.protocol !== 'https:' && !isLoopbackHost(u.hostname)) throw new ConfigError(`${source}: ${key}: expected an https:// URL (plain http only on loopback)`);
    };
    if (cfg.console.oidc !== undefined) plain(cfg.console.oidc.issuer, 'console.oidc.issuer');
    for (const key of ['idp_sso_url', 'idp_slo_url', 'idp_metadata_url'] as const) {
      const url = cfg.console.saml?.[key];
      // The metadata carries the signing certificates: fetched over plain HTTP, anyone on the path could swap them.
      if (url !== undefined) plain(url, `console.saml.${key}`);
    }
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
  return { ...cfg, ledger: { ...cfg.ledger, signing_key: signingKey }, source };
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
interface PolicyCandidate {
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
