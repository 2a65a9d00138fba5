// A real Keycloak (the identity provider humans sign in with) on loopback for the console tests:
// installed from Maven Central by install-keycloak.sh, run in dev mode on an in-memory database
// with the Temurin 25 JDK, and configured only through its admin REST API.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { findFreePort } from './postgres.js';
import { runInstaller } from './installer.js';
import { unrefChild } from './proc.js';

interface KeycloakUser {
  username: string;
  password: string;
  /** Groups the user is in; the console client puts their names in the `groups` claim. */
  groups: string[];
}

interface KeycloakRealm {
  /** The realm's issuer URL (`<base>/realms/<name>`). */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** With a SAML client: the IdP's metadata (EntityDescriptor with its signing certificate and SSO endpoints). */
  samlMetadataUrl?: string;
}

/** A SAML 2.0 service provider the realm trusts (the console's SAML sign-in). */
interface KeycloakSamlClient {
  /** The SP's entity id (the AuthnRequest's Issuer). */
  entityId: string;
  /** Where the IdP posts the Response (HTTP-POST binding). */
  acsUrl: string;
  /**
   * Single logout: the SP's SingleLogoutService (the browser's HTTP-Redirect and the back-channel
   * HTTP-POST both go there) and the PEM certificate its signed requests are checked with.
   */
  logout?: { sloUrl: string; signingCertPem: string };
}

export interface Keycloak {
  baseUrl: string;
  /** Creates a realm with a confidential OIDC client (code flow, PKCE S256 required) and the users and their groups. */
  createRealm(opts: { name: string; redirectUri: string; users: KeycloakUser[]; clientSecret?: string; saml?: KeycloakSamlClient }): Promise<KeycloakRealm>;
  /**
   * Ends every session of `username` in the realm through the admin API (Keycloak then sends
   * back-channel logouts to the clients). Keycloak in dev mode names itself after the host it is
   * reached at, so the LogoutRequests' Issuer is the realm at `at` (default `baseUrl`).
   */
  logoutUser(realm: string, username: string, at?: string): Promise<void>;
  /** How many sessions `username` has in the realm now. */
  userSessions(realm: string, username: string): Promise<number>;
  stop(): Promise<void>;
  log(): string;
}

/** Keycloak 26 needs Java 21 or newer: the newest Temurin JDK under /usr/lib/jvm. */
function javaHome(): string {
  const jdk = readdirSync('/usr/lib/jvm').filter((d) => /^temurin-(\d+)-jdk/.test(d) && Number(/^temurin-(\d+)/.exec(d)![1]) >= 21).sort().pop();
  if (jdk === undefined) throw new Error('Keycloak needs a Java 21+ JDK: no /usr/lib/jvm/temurin-2x-jdk* found');
  return join('/usr/lib/jvm', jdk);
}

async function installKeycloak(): Promise<string> {
  return runInstaller('install-keycloak.sh', { timeoutMs: 15 * 60_000, quiet: true });
}

export async function startKeycloak(opts: { readyTimeoutMs?: number } = {}): Promise<Keycloak> {
  const home = await installKeycloak();
  const port = await findFreePort();
  const managementPort = await findFreePort();
  const adminPassword = randomBytes(12).toString('base64url');
  const baseUrl = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn(join(home, 'bin', 'kc.sh'), [
    'start-dev', '--db=dev-mem', '--http-host=127.0.0.1', `--http-port=${port}`, `--http-management-port=${managementPort}`,
    '--hostname-strict=false', '--cache=local', '--log-level=WARN',
  ], {
    env: { ...process.env, JAVA_HOME: javaHome(), KC_BOOTSTRAP_ADMIN_USERNAME: 'admin', KC_BOOTSTRAP_ADMIN_PASSWORD: adminPassword, JAVA_OPTS_KC_HEAP: '-Xms128m -Xmx768m' },
    stdio: ['ignore', 'pipe', 'pipe'], detached: true,
  });
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-20_000)));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-20_000)));
  const killAll = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal); // kc.sh starts java as its child: signal the whole group
    } catch {
      /* already gone */
    }
  };
  process.once('exit', () => killAll('SIGKILL'));
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`Keycloak exited with ${code} during startup:\n${output.slice(-3000)}`))));
  exited.catch(() => undefined);
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 240_000);
  const ready = (async () => {
    for (;;) {
      const ok = await fetch(`${baseUrl}/realms/master/.well-known/openid-configuration`).then((r) => r.ok, () => false);
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`Keycloak did not answer within the deadline:\n${output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  try {
    await Promise.race([ready, exited]);
  } catch (err) {
    killAll('SIGKILL');
    throw err;
  }
  unrefChild(child);

  const adminToken = async (at = baseUrl): Promise<string> => {
    const res = await fetch(`${at}/realms/master/protocol/openid-connect/token`, {
      method: 'POST', body: new URLSearchParams({ grant_type: 'password', client_id: 'admin-cli', username: 'admin', password: adminPassword }),
    });
    if (!res.ok) throw new Error(`Keycloak admin sign-in failed: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { access_token: string }).access_token;
  };

  const userId = async (realm: string, username: string): Promise<string> => {
    const res = await fetch(`${baseUrl}/admin/realms/${realm}/users?exact=true&username=${encodeURIComponent(username)}`, { headers: { authorization: `Bearer ${await adminToken()}` } });
    const found = res.ok ? ((await res.json()) as { id: string }[])[0] : undefined;
    if (found === undefined) throw new Error(`no Keycloak user ${username} in realm ${realm} (${res.status})`);
    return found.id;
  };

  return {
    baseUrl,
    async createRealm({ name, redirectUri, users, clientSecret = randomBytes(18).toString('base64url'), saml }) {
      const clientId = 'agate-console';
      const groups = [...new Set(users.flatMap((u) => u.groups))];
      // One realm representation: the client, its groups mapper, the groups and the users.
      const realm = {
        realm: name, enabled: true, sslRequired: 'none',
        groups: groups.map((g) => ({ name: g })),
        clients: [{
          clientId, enabled: true, protocol: 'openid-connect', publicClient: false, secret: clientSecret,
          standardFlowEnabled: true, directAccessGrantsEnabled: false, implicitFlowEnabled: false,
          redirectUris: [redirectUri], webOrigins: [],
          attributes: { 'pkce.code.challenge.method': 'S256' },
          protocolMappers: [{
            name: 'groups', protocol: 'openid-connect', protocolMapper: 'oidc-group-membership-mapper',
            config: { 'claim.name': 'groups', 'full.path': 'false', 'id.token.claim': 'true', 'access.token.claim': 'true', 'userinfo.token.claim': 'true' },
          }],
        }, ...(saml === undefined ? [] : [samlClient(saml)])],
        users: users.map((u) => ({
          username: u.username, enabled: true, email: `${u.username}@example.test`, emailVerified: true, firstName: u.username, lastName: 'Tester',
          credentials: [{ type: 'password', value: u.password, temporary: false }], groups: u.groups.map((g) => `/${g}`), requiredActions: [],
        })),
      };
      const res = await fetch(`${baseUrl}/admin/realms`, {
        method: 'POST', headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' }, body: JSON.stringify(realm),
      });
      if (res.status !== 201) throw new Error(`creating Keycloak realm ${name} failed: ${res.status} ${await res.text()}`);
      return { issuer: `${baseUrl}/realms/${name}`, clientId, clientSecret, ...(saml === undefined ? {} : { samlMetadataUrl: `${baseUrl}/realms/${name}/protocol/saml/descriptor` }) };
    },
    async logoutUser(realm, username, at = baseUrl) {
      const headers = { authorization: `Bearer ${await adminToken(at)}` };
      const res = await fetch(`${at}/admin/realms/${realm}/users/${await userId(realm, username)}/logout`, { method: 'POST', headers });
      if (res.status !== 204) throw new Error(`Keycloak logout of ${username} failed: ${res.status} ${await res.text()}`);
    },
    async userSessions(realm, username) {
      const res = await fetch(`${baseUrl}/admin/realms/${realm}/users/${await userId(realm, username)}/sessions`, { headers: { authorization: `Bearer ${await adminToken()}` } });
      if (!res.ok) throw new Error(`reading ${username}'s Keycloak sessions failed: ${res.status} ${await res.text()}`);
      return ((await res.json()) as unknown[]).length;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      killAll('SIGTERM');
      const timer = setTimeout(() => killAll('SIGKILL'), 20_000);
      await gone;
      clearTimeout(timer);
    },
    log: () => output,
  };
}

/**
 * A SAML client: signed assertions and documents (the realm's RSA key, in the IdP metadata), the
 * POST binding back to `acsUrl`, the username as a persistent NameID, and the user's groups in a
 * `groups` attribute (the same role claim the OIDC client carries). Without `logout` the SP has no
 * key registered and unsigned AuthnRequests are accepted; with it, the SP's requests must be
 * signed by its certificate, and logout goes to its SingleLogoutService: the answer to the SP's own
 * LogoutRequest by HTTP-Redirect through the browser (responses not forced to POST), and every
 * logout Keycloak starts (an admin's, another client's) by HTTP-POST from Keycloak itself (back
 * channel; a front-channel client is logged out only when a browser is at hand).
 */
function samlClient({ entityId, acsUrl, logout }: KeycloakSamlClient): Record<string, unknown> {
  const certBody = logout?.signingCertPem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
  return {
    // Keycloak logs a front-channel client out only through a browser; back channel lets an admin's or the session's end reach the SP.
    clientId: entityId, enabled: true, protocol: 'saml', redirectUris: [acsUrl, ...(logout === undefined ? [] : [logout.sloUrl])], frontchannelLogout: logout === undefined,
    attributes: {
      'saml.assertion.signature': 'true', 'saml.server.signature': 'true', 'saml.client.signature': logout === undefined ? 'false' : 'true',
      'saml.authnstatement': 'true', 'saml_force_name_id_format': 'true', 'saml_name_id_format': 'persistent',
      'saml.signature.algorithm': 'RSA_SHA256', 'saml_assertion_consumer_url_post': acsUrl, 'post.logout.redirect.uris': acsUrl,
      ...(logout === undefined ? {} : {
        'saml.signing.certificate': certBody, 'saml.force.post.binding': 'false',
        'saml_single_logout_service_url_redirect': logout.sloUrl, 'saml_single_logout_service_url_post': logout.sloUrl,
      }),
    },
    protocolMappers: [{
      name: 'groups', protocol: 'saml', protocolMapper: 'saml-group-membership-mapper',
      config: { 'attribute.name': 'groups', 'full.path': 'false', 'single': 'false', 'attribute.nameformat': 'Basic' },
    }],
  };
}
