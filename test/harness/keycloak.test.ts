// The Keycloak harness: it starts, a realm built through the admin API publishes its discovery
// document, and the client it made refuses a code flow without PKCE (so the console must use it).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startKeycloak, type Keycloak } from './keycloak.js';

const kc = suite<{ keycloak: Keycloak }>('keycloak harness');

kc.before(async (ctx) => {
  ctx.keycloak = await startKeycloak();
});

kc.after(async (ctx) => {
  await ctx.keycloak?.stop();
});

kc('a realm made through the admin API serves discovery and requires PKCE', async (ctx) => {
  const realm = await ctx.keycloak.createRealm({ name: 'harness', redirectUri: 'http://127.0.0.1:1/ui/callback', users: [{ username: 'ann', password: 'pw-ann-1', groups: ['approver'] }] });
  const disc = (await (await fetch(`${realm.issuer}/.well-known/openid-configuration`)).json()) as { issuer: string; authorization_endpoint: string; code_challenge_methods_supported: string[] };
  assert.is(disc.issuer, realm.issuer);
  assert.ok(disc.code_challenge_methods_supported.includes('S256'));
  const noPkce = new URL(disc.authorization_endpoint);
  noPkce.search = new URLSearchParams({ client_id: realm.clientId, redirect_uri: 'http://127.0.0.1:1/ui/callback', response_type: 'code', scope: 'openid', state: 's' }).toString();
  const res = await fetch(noPkce, { redirect: 'manual' });
  // Keycloak answers a missing code_challenge by redirecting back with an error.
  assert.is(res.status, 302);
  assert.match(res.headers.get('location') ?? '', /error=invalid_request/);
  assert.match(res.headers.get('location') ?? '', /code_challenge/);
});

kc.run();
