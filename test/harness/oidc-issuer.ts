// A real (tiny) OIDC issuer for tests: serves discovery + JWKS over HTTP on
// 127.0.0.1 and mints id-tokens shaped like the ones CI systems (GitHub
// Actions, GitLab CI) hand to workloads, plus deliberately broken tokens.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

type SigningAlg = 'RS256' | 'ES256';

interface StartOidcIssuerOptions {
  /** Default `aud` of minted tokens. Default 'agate'. */
  audience?: string;
}

interface MintOptions {
  alg?: SigningAlg;
  /** Seconds from now (negative = already expired), or a jose time span like '5m' / '-1h'. Default 300 s. */
  expiresIn?: number | string;
  /** Seconds from now, or a jose time span like '10m'. Default: no nbf. */
  notBefore?: number | string;
  audience?: string | string[];
  issuer?: string;
  /** Header kid; defaults to the kid of the key that signs. */
  kid?: string;
  /** Extra protected-header parameters, e.g. `{ crit: ['exp-ext'], 'exp-ext': 1 }`. */
  header?: Record<string, unknown>;
}

export interface OidcIssuer {
  /** `http://127.0.0.1:PORT`, also the `iss` of minted tokens. */
  issuer: string;
  jwksUri: string;
  audience: string;
  /** kid of each signing key published in the JWKS. */
  kids: Record<SigningAlg, string>;
  /** Number of JWKS fetches served so far (to test verifier caching). */
  readonly requests: number;
  /** HTTP status the JWKS (and discovery) answer with: 200 by default; another stands for an issuer that is down. */
  status: number;
  /** The JWKS answer's Cache-Control header: `no-store` by default. */
  cacheControl: string;
  /** Takes a key out of the published JWKS (a revoked key); tokens it signs still mint. */
  withdraw(alg: SigningAlg): void;
  /**
   * Signs a JWT. Defaults: iss = issuer, aud = audience, iat = now, exp = now + 300.
   * `claims` override those defaults, `opts` override claims; a claim set to
   * undefined (e.g. `{ exp: undefined }`) is left out of the token.
   */
  mint(claims?: Record<string, unknown>, opts?: MintOptions): Promise<string>;
  mintExpired(claims?: Record<string, unknown>, opts?: MintOptions): Promise<string>;
  /** `alg: none` token with an empty signature; must be rejected by any verifier. */
  mintUnsigned(claims?: Record<string, unknown>): string;
  /** Signed by a key that is NOT in the JWKS, under a kid that IS. */
  mintWithForeignKey(claims?: Record<string, unknown>, opts?: MintOptions): Promise<string>;
  githubActionsClaims(overrides?: Record<string, unknown>): Record<string, unknown>;
  gitlabCiClaims(overrides?: Record<string, unknown>): Record<string, unknown>;
  close(): Promise<void>;
}

interface KeyEntry {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function makeKey(alg: SigningAlg): Promise<KeyEntry> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const kid = `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}`;
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

const nowSecs = () => Math.floor(Date.now() / 1000);
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const digits = (n: number) => String(Math.floor(Math.random() * 10 ** n));

export async function startOidcIssuer(opts: StartOidcIssuerOptions = {}): Promise<OidcIssuer> {
  const audience = opts.audience ?? 'agate';
  const keys: Record<SigningAlg, KeyEntry> = { RS256: await makeKey('RS256'), ES256: await makeKey('ES256') };
  // Generated on first use: RSA key generation is the slowest step here.
  const foreign: Partial<Record<SigningAlg, KeyEntry>> = {};
  let jwksRequests = 0;
  let answerStatus = 200;
  let cacheControl = 'no-store';
  const withdrawn = new Set<SigningAlg>();

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': cacheControl });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET') return send(405, { error: 'method not allowed' });
    if (answerStatus !== 200) return send(answerStatus, { error: 'down' });
    if (path === '/.well-known/openid-configuration') {
      return send(200, {
        issuer,
        jwks_uri: jwksUri,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256', 'ES256'],
        claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'jti', 'nbf'],
      });
    }
    if (path === '/.well-known/jwks') {
      jwksRequests++;
      return send(200, { keys: (['RS256', 'ES256'] as const).filter((a) => !withdrawn.has(a)).map((a) => keys[a].publicJwk) });
    }
    return send(404, { error: 'not found' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const jwksUri = `${issuer}/.well-known/jwks`;

  async function sign(claims: Record<string, unknown>, o: MintOptions, key: KeyEntry, kid: string): Promise<string> {
    const alg = o.alg ?? 'RS256';
    const now = nowSecs();
    const payload: Record<string, unknown> = { iss: issuer, aud: audience, iat: now, exp: now + 300, ...claims };
    if (o.issuer !== undefined) payload.iss = o.issuer;
    if (o.audience !== undefined) payload.aud = o.audience;
    const header = { alg, kid, typ: 'JWT', ...o.header };
    // jose refuses to sign a header with a crit extension it does not know; sign those by hand.
    if (o.header?.crit !== undefined) return signRaw(header, payload, key.privateKey);
    const jwt = new SignJWT(payload as JWTPayload).setProtectedHeader(header);
    // jose treats a number as an absolute timestamp; ours are relative to now.
    if (o.expiresIn !== undefined) jwt.setExpirationTime(typeof o.expiresIn === 'number' ? now + o.expiresIn : o.expiresIn);
    if (o.notBefore !== undefined) jwt.setNotBefore(typeof o.notBefore === 'number' ? now + o.notBefore : o.notBefore);
    return jwt.sign(key.privateKey);
  }

  const issuerApi: OidcIssuer = {
    issuer,
    jwksUri,
    audience,
    kids: { RS256: keys.RS256.kid, ES256: keys.ES256.kid },
    get requests() {
      return jwksRequests;
    },
    get status() {
      return answerStatus;
    },
    set status(s: number) {
      answerStatus = s;
    },
    get cacheControl() {
      return cacheControl;
    },
    set cacheControl(v: string) {
      cacheControl = v;
    },
    withdraw(alg) {
      withdrawn.add(alg);
    },
    mint(claims = {}, o = {}) {
      const key = keys[o.alg ?? 'RS256'];
      return sign(claims, o, key, o.kid ?? key.kid);
    },
    mintExpired(claims = {}, o = {}) {
      const now = nowSecs();
      return issuerApi.mint({ iat: now - 900, ...claims }, { ...o, expiresIn: -600 });
    },
    mintUnsigned(claims = {}) {
      const now = nowSecs();
      const payload = { iss: issuer, aud: audience, iat: now, exp: now + 300, ...claims };
      return `${b64url({ alg: 'none' })}.${b64url(payload)}.`;
    },
    async mintWithForeignKey(claims = {}, o = {}) {
      const alg = o.alg ?? 'RS256';
      const key = (foreign[alg] ??= await makeKey(alg));
      return sign(claims, o, key, o.kid ?? keys[alg].kid);
    },
    githubActionsClaims(overrides = {}) {
      const repository = String(overrides.repository ?? 'acme/app');
      const owner = repository.split('/')[0] ?? 'acme';
      const ref = String(overrides.ref ?? 'refs/heads/main');
      const workflowFile = '.github/workflows/deploy.yml';
      const sha = randomBytes(20).toString('hex');
      // Note: real GitHub uses `repo:OWNER/REPO:environment:NAME` as sub when
      // a job targets an environment; the ref form is the common default and
      // what policies usually match on. Override `sub` to test the other.
      return {
        jti: randomUUID(),
        sub: `repo:${repository}:ref:${ref}`,
        ref,
        ref_type: ref.startsWith('refs/tags/') ? 'tag' : 'branch',
        ref_protected: 'true',
        sha,
        repository,
        repository_id: digits(9),
        repository_owner: owner,
        repository_owner_id: digits(8),
        repository_visibility: 'private',
        actor: 'octocat',
        actor_id: digits(7),
        workflow: 'deploy',
        workflow_ref: `${repository}/${workflowFile}@${ref}`,
        workflow_sha: sha,
        job_workflow_ref: `${repository}/${workflowFile}@${ref}`,
        job_workflow_sha: sha,
        event_name: 'push',
        environment: 'production',
        run_id: digits(10),
        run_number: '42',
        run_attempt: '1',
        runner_environment: 'github-hosted',
        head_ref: '',
        base_ref: '',
        ...overrides,
      };
    },
    gitlabCiClaims(overrides = {}) {
      const projectPath = String(overrides.project_path ?? 'acme/app');
      const namespacePath = projectPath.split('/').slice(0, -1).join('/') || 'acme';
      const ref = String(overrides.ref ?? 'main');
      const refType = String(overrides.ref_type ?? 'branch');
      return {
        jti: randomUUID(),
        sub: `project_path:${projectPath}:ref_type:${refType}:ref:${ref}`,
        namespace_id: digits(6),
        namespace_path: namespacePath,
        project_id: digits(7),
        project_path: projectPath,
        project_visibility: 'private',
        user_id: digits(5),
        user_login: 'alice',
        user_email: 'alice@example.com',
        user_access_level: 'maintainer',
        pipeline_id: digits(9),
        pipeline_source: 'push',
        job_id: digits(10),
        ref,
        ref_type: refType,
        ref_path: refType === 'tag' ? `refs/tags/${ref}` : `refs/heads/${ref}`,
        ref_protected: 'true',
        environment: 'production',
        environment_protected: 'true',
        deployment_tier: 'production',
        runner_id: digits(4),
        runner_environment: 'gitlab-hosted',
        sha: randomBytes(20).toString('hex'),
        ci_config_ref_uri: `gitlab.example.com/${projectPath}//.gitlab-ci.yml@refs/heads/${ref}`,
        ...overrides,
      };
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Verifiers keep JWKS connections alive; without this close() waits for them.
        server.closeAllConnections();
      });
    },
  };
  return issuerApi;
}

/** A compact JWS signed with WebCrypto (RS256 or ES256, as the key was generated), header as given. */
async function signRaw(header: Record<string, unknown>, payload: Record<string, unknown>, key: CryptoKey): Promise<string> {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64(header)}.${b64(payload)}`;
  const params = key.algorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' };
  const signature = await crypto.subtle.sign(params, key, Buffer.from(input));
  return `${input}.${Buffer.from(signature).toString('base64url')}`;
}
