// SAML single logout and IdP metadata by URL, against SamlLogin: LogoutRequests we send are
// signed and name the signed-in subject; logout messages from the IdP are taken only when signed
// by its key (HTTP-Redirect query signature, built here by hand as SAML bindings §3.4.4.1 says),
// from its entityID, and a LogoutResponse only when it answers a LogoutRequest of ours, once.
// Metadata is served by a real HTTP server on loopback.
import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { createPublicKey, sign, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { makeTestCa } from '../../../../test/harness/test-ca.js';
import { SamlLogin, type SamlConfig } from './saml-login.js';

const IDP = 'https://idp.test/realms/a';
const SP = 'agate-console-sp';
const BASE = 'http://127.0.0.1:8000';
const IDP_SLO = 'http://127.0.0.1:9/slo';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';

interface Ctx {
  dir: string; idpKey: string; idpCert: string; otherKey: string; otherCert: string; spKey: string; spCertFile: string;
  cfg: SamlConfig; login: SamlLogin; metadata: { status: number; body: string }; server: Server; metadataUrl: string;
}
const slo = suite<Ctx>('SamlLogin: single logout and IdP metadata');

slo.before(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-saml-slo-'));
  const ca = await makeTestCa(ctx.dir);
  const other = await ca.client('not-the-idp');
  const sp = await ca.client('agate-sp');
  [ctx.idpKey, ctx.idpCert, ctx.otherKey, ctx.otherCert, ctx.spKey] = [ca.server.key, ca.server.cert, other.key, other.cert, sp.key].map((f) => readFileSync(f, 'utf8')) as [string, string, string, string, string];
  ctx.spCertFile = sp.cert;
  ctx.cfg = {
    idp_entity_id: IDP, idp_sso_url: 'http://127.0.0.1:9/sso', idp_slo_url: IDP_SLO, idp_cert_file: ca.server.cert, sp_entity_id: SP,
    acs_url: `${BASE}/ui/saml/acs`, slo_url: `${BASE}/ui/saml/slo`, sp_signing: { key: { file: sp.key }, cert_file: sp.cert }, clock_skew_s: 60, metadata_refresh_s: 3600,
  };
  ctx.login = new SamlLogin(ctx.cfg);
  await ctx.login.start();
  ctx.metadata = { status: 200, body: idpMetadata(ctx.idpCert) };
  ctx.server = createServer((_req, res) => {
    res.writeHead(ctx.metadata.status, { 'content-type': 'application/samlmetadata+xml' });
    res.end(ctx.metadata.body);
  });
  await new Promise<void>((r) => ctx.server.listen(0, '127.0.0.1', r));
  ctx.metadataUrl = `http://127.0.0.1:${(ctx.server.address() as AddressInfo).port}/metadata`;
});

slo.after((ctx) => {
  ctx.server?.close();
  rmSync(ctx.dir, { recursive: true, force: true });
});

/** An HTTP-Redirect message to our SLO endpoint, signed over the query as the binding says (or not). */
function redirect(param: 'SAMLRequest' | 'SAMLResponse', xml: string, key?: string): URL {
  const query = `${param}=${encodeURIComponent(deflateRawSync(Buffer.from(xml)).toString('base64'))}&RelayState=rs1&SigAlg=${encodeURIComponent(RSA_SHA256)}`;
  const signature = key === undefined ? '' : `&Signature=${encodeURIComponent(sign('sha256', Buffer.from(query), key).toString('base64'))}`;
  return new URL(`${BASE}/ui/saml/slo?${query}${signature}`);
}

const logoutRequest = (issuer = IDP, issued = new Date()) => `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_idp${Math.random().toString(16).slice(2)}" Version="2.0" IssueInstant="${issued.toISOString()}" Destination="${BASE}/ui/saml/slo">`
  + `<saml:Issuer>${issuer}</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">G-alice</saml:NameID><samlp:SessionIndex>idx-7</samlp:SessionIndex></samlp:LogoutRequest>`;

const logoutResponse = (inResponseTo: string) => `<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r${Math.random().toString(16).slice(2)}" Version="2.0" IssueInstant="${new Date().toISOString()}" Destination="${BASE}/ui/saml/slo" InResponseTo="${inResponseTo}">`
  + `<saml:Issuer>${IDP}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>`;

function idpMetadata(cert: string, entityId = IDP): string {
  const body = cert.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
  return `<?xml version="1.0"?><md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"><md:EntityDescriptor entityID="${entityId}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">`
    + `<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${body}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`
    + `<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.test/md-slo"/>`
    + `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.test/post-sso"/>`
    + `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.test/md-sso"/>`
    + `</md:IDPSSODescriptor></md:EntityDescriptor></md:EntitiesDescriptor>`;
}

async function refused(p: Promise<unknown>, code: string, why: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, AgateError);
    assert.is((err as AgateError).code, code, (err as Error).message);
    assert.match((err as Error).message, why);
    return;
  }
  assert.unreachable(`accepted; expected ${code} ${why}`);
}

slo('our LogoutRequest goes to the IdP SLO URL, names the subject and session, and is signed by our key', async ({ login, spCertFile }) => {
  const url = (await login.logoutUrl({ nameID: 'G-alice', nameIDFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent', sessionIndex: 'idx-7' }))!;
  assert.is(url.origin + url.pathname, IDP_SLO);
  const xml = inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
  assert.match(xml, /<saml:Issuer[^>]*>agate-console-sp<\/saml:Issuer>/);
  assert.match(xml, />G-alice<\/saml:NameID>/);
  assert.match(xml, />idx-7<\/saml2p:SessionIndex>/);
  assert.is(url.searchParams.get('SigAlg'), RSA_SHA256);
  const signed = url.search.slice(1).replace(/&Signature=.*$/, '');
  assert.ok(verify('sha256', Buffer.from(signed), createPublicKey(readFileSync(spCertFile)), Buffer.from(url.searchParams.get('Signature')!, 'base64')), 'the query signature verifies with our certificate');
});

slo('the IdP\'s LogoutResponse is taken once, only for a LogoutRequest of ours, only signed by the IdP', async ({ login, idpKey, otherKey }) => {
  const url = (await login.logoutUrl({ nameID: 'G-alice' }))!;
  const id = /\sID="([^"]+)"/.exec(inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8'))![1]!;
  await refused(login.acceptRedirect(redirect('SAMLResponse', logoutResponse(id))), ErrorCode.CONSOLE_LOGOUT_REFUSED, /not signed/);
  await refused(login.acceptRedirect(redirect('SAMLResponse', logoutResponse(id), otherKey)), ErrorCode.CONSOLE_LOGOUT_REFUSED, /signature/i);
  await refused(login.acceptRedirect(redirect('SAMLResponse', logoutResponse('_not-ours'), idpKey)), ErrorCode.CONSOLE_LOGOUT_REFUSED, /InResponseTo is not valid|no logout request of ours/);
  assert.equal(await login.acceptRedirect(redirect('SAMLResponse', logoutResponse(id), idpKey)), { kind: 'response' });
  await refused(login.acceptRedirect(redirect('SAMLResponse', logoutResponse(id), idpKey)), ErrorCode.CONSOLE_LOGOUT_REFUSED, /InResponseTo is not valid|no logout request of ours/);
});

slo('an IdP-initiated LogoutRequest by redirect names whom to sign out and gets our signed LogoutResponse', async ({ login, idpKey, otherKey }) => {
  await refused(login.acceptRedirect(redirect('SAMLRequest', logoutRequest())), ErrorCode.CONSOLE_LOGOUT_REFUSED, /not signed/);
  await refused(login.acceptRedirect(redirect('SAMLRequest', logoutRequest(), otherKey)), ErrorCode.CONSOLE_LOGOUT_REFUSED, /signature/i);
  await refused(login.acceptRedirect(redirect('SAMLRequest', logoutRequest('https://evil.test'), idpKey)), ErrorCode.CONSOLE_LOGOUT_REFUSED, /issuer/i);
  const got = await login.acceptRedirect(redirect('SAMLRequest', logoutRequest(), idpKey));
  assert.is(got.kind, 'request');
  if (got.kind !== 'request') return;
  assert.is(got.subject.nameID, 'G-alice');
  assert.is(got.subject.sessionIndex, 'idx-7');
  assert.is(got.reply!.origin + got.reply!.pathname, IDP_SLO);
  assert.is(got.reply!.searchParams.get('RelayState'), 'rs1');
  assert.ok(got.reply!.searchParams.get('Signature'));
  assert.match(inflateRawSync(Buffer.from(got.reply!.searchParams.get('SAMLResponse')!, 'base64')).toString('utf8'), /status:Success/);
});

slo('a captured LogoutRequest cannot be replayed: each is taken once, and only while fresh', async ({ login, idpKey }) => {
  // Signed LogoutRequests carry no NotOnOrAfter as a rule (Keycloak sends none): without this,
  // one captured URL signs the person out again whenever it is replayed.
  const once = redirect('SAMLRequest', logoutRequest(), idpKey);
  assert.is((await login.acceptRedirect(once)).kind, 'request');
  await refused(login.acceptRedirect(once), ErrorCode.CONSOLE_LOGOUT_REFUSED, /already used/);
  const old = new Date(Date.now() - 3600_000);
  await refused(login.acceptRedirect(redirect('SAMLRequest', logoutRequest(IDP, old), idpKey)), ErrorCode.CONSOLE_LOGOUT_REFUSED, /issued .* ago/);
  const future = new Date(Date.now() + 3600_000);
  await refused(login.acceptRedirect(redirect('SAMLRequest', logoutRequest(IDP, future), idpKey)), ErrorCode.CONSOLE_LOGOUT_REFUSED, /issued in the future/);
});

slo('a back-channel LogoutRequest (HTTP-POST) needs an enveloped signature', async ({ login }) => {
  await refused(login.acceptPost(Buffer.from(logoutRequest()).toString('base64')), ErrorCode.CONSOLE_LOGOUT_REFUSED, /signature/i);
});

slo('without slo_url there is no single logout', async ({ cfg }) => {
  const plain = new SamlLogin({ ...cfg, slo_url: undefined });
  assert.is(await plain.logoutUrl({ nameID: 'G-alice' }), undefined);
  await refused(plain.acceptRedirect(new URL(`${BASE}/ui/saml/slo?SAMLRequest=x`)), ErrorCode.API_NOT_FOUND, /not configured/);
});

slo('IdP metadata by URL: endpoints and certificate from it; a pinned certificate file wins', async (ctx) => {
  const byUrl = new SamlLogin({ ...ctx.cfg, idp_metadata_url: ctx.metadataUrl, idp_sso_url: undefined, idp_slo_url: undefined, idp_cert_file: undefined });
  await byUrl.start();
  try {
    const { url } = await byUrl.begin();
    assert.is(url.origin + url.pathname, 'https://idp.test/md-sso', 'the HTTP-Redirect SSO location, not the POST one');
    assert.is((await byUrl.logoutUrl({ nameID: 'G-alice' }))!.origin + '/md-slo', 'https://idp.test/md-slo');
    // The metadata's certificate verifies the IdP's messages; another key does not.
    assert.is((await byUrl.acceptRedirect(redirect('SAMLRequest', logoutRequest(), ctx.idpKey))).kind, 'request');
    await refused(byUrl.acceptRedirect(redirect('SAMLRequest', logoutRequest(), ctx.otherKey)), ErrorCode.CONSOLE_LOGOUT_REFUSED, /signature/i);
  } finally {
    byUrl.close();
  }
  // Pinned: the file's certificate is the only one trusted, whatever the metadata says.
  const pinned = new SamlLogin({ ...ctx.cfg, idp_metadata_url: ctx.metadataUrl, idp_cert_file: join(ctx.dir, 'not-the-idp.crt') });
  await pinned.start();
  try {
    await refused(pinned.acceptRedirect(redirect('SAMLRequest', logoutRequest(), ctx.idpKey)), ErrorCode.CONSOLE_LOGOUT_REFUSED, /signature/i);
    assert.is((await pinned.acceptRedirect(redirect('SAMLRequest', logoutRequest(), ctx.otherKey))).kind, 'request');
  } finally {
    pinned.close();
  }
});

slo('metadata that cannot be fetched or used is a precise start error; a failed refresh keeps the last good metadata', async (ctx) => {
  const make = () => new SamlLogin({ ...ctx.cfg, idp_metadata_url: ctx.metadataUrl, idp_sso_url: undefined, idp_slo_url: undefined, idp_cert_file: undefined });
  for (const [metadata, why] of [
    [{ status: 503, body: 'down' }, /HTTP 503/],
    [{ status: 200, body: '<md:EntityDescriptor' }, /it is not well-formed XML/],
    [{ status: 200, body: idpMetadata(ctx.idpCert, 'https://other.test') }, /it describes no EntityDescriptor with entityID https:\/\/idp.test\/realms\/a/],
  ] as const) {
    ctx.metadata = metadata;
    await refused(make().start(), ErrorCode.CONSOLE_SAML_METADATA, new RegExp(`console.saml.idp_metadata_url: the IdP metadata at ${ctx.metadataUrl} cannot be used: ${why.source}`));
  }
  await refused(new SamlLogin({ ...ctx.cfg, idp_metadata_url: 'http://127.0.0.1:1/metadata', idp_cert_file: undefined }).start(), ErrorCode.CONSOLE_SAML_METADATA, /cannot be used: fetch failed/);
  ctx.metadata = { status: 200, body: idpMetadata(ctx.idpCert) };
  const login = make();
  await login.start();
  try {
    ctx.metadata = { status: 500, body: '' };
    await login.refreshMetadata();
    assert.is((await login.acceptRedirect(redirect('SAMLRequest', logoutRequest(), ctx.idpKey))).kind, 'request', 'the last good metadata is still used');
    // A refresh that succeeds takes effect: the IdP rolled its key over.
    ctx.metadata = { status: 200, body: idpMetadata(ctx.otherCert) };
    await login.refreshMetadata();
    assert.is((await login.acceptRedirect(redirect('SAMLRequest', logoutRequest(), ctx.otherKey))).kind, 'request');
    await refused(login.acceptRedirect(redirect('SAMLRequest', logoutRequest(), ctx.idpKey)), ErrorCode.CONSOLE_LOGOUT_REFUSED, /signature/i);
  } finally {
    login.close();
  }
});

slo.run();
