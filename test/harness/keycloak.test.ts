// The Keycloak harness: it starts, a realm built through the admin API publishes its discovery
// document, and the client it made refuses a code flow without PKCE (so the console must use it);
// a SAML client publishes the IdP metadata and gets the login form for its AuthnRequest.
import { suite } from './suite.js';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
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

kc('a realm with a SAML client publishes signed-IdP metadata and accepts that client\'s AuthnRequest', async (ctx) => {
  const acsUrl = 'http://127.0.0.1:1/ui/saml/acs';
  const entityId = 'http://127.0.0.1:1/ui/saml/metadata';
  const realm = await ctx.keycloak.createRealm({ name: 'harness-saml', redirectUri: 'http://127.0.0.1:1/ui/callback', users: [{ username: 'bo', password: 'pw-bo-1', groups: ['auditor'] }], saml: { entityId, acsUrl } });
  const metadata = await (await fetch(realm.samlMetadataUrl!)).text();
  assert.match(metadata, /<md:EntityDescriptor[^>]+entityID="[^"]+\/realms\/harness-saml"/);
  assert.match(metadata, /<ds:X509Certificate>[A-Za-z0-9+/=\s]{200,}<\/ds:X509Certificate>/);
  const sso = /<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2\.0:bindings:HTTP-Redirect" Location="([^"]+)"/.exec(metadata);
  assert.ok(sso, metadata.slice(0, 2000));
  // An AuthnRequest from the registered SP (HTTP-Redirect binding: deflated, base64, unsigned) gets the login form;
  // one from an unknown SP is refused.
  const request = (issuer: string) => {
    const xml = `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_${randomBytes(16).toString('hex')}" Version="2.0" IssueInstant="${new Date().toISOString()}" Destination="${sso![1]}" AssertionConsumerServiceURL="${acsUrl}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>${issuer}</saml:Issuer></samlp:AuthnRequest>`;
    return `${sso![1]}?${new URLSearchParams({ SAMLRequest: deflateRawSync(xml).toString('base64') })}`;
  };
  const ok = await fetch(request(entityId));
  assert.is(ok.status, 200);
  assert.match(await ok.text(), /id="kc-form-login"/);
  const unknown = await fetch(request('http://127.0.0.1:1/not-registered'));
  assert.not.match(await unknown.text(), /id="kc-form-login"/);
});

kc.run();
