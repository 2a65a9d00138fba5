// SAML responses built and signed here (xml-crypto, RSA-SHA256, a key from the test CA) and put
// through SamlLogin: the one good answer is accepted; unsigned, wrongly signed, tampered, wrong
// audience or issuer, expired, unsolicited and replayed ones are refused.
import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignedXml } from 'xml-crypto';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import { makeTestCa } from '../../../../test/harness/test-ca.js';
import { SamlLogin, type SamlConfig } from './saml-login.js';

const IDP = 'https://idp.test/realms/a';
const SP = 'agate-console-sp';
const ACS = 'http://127.0.0.1:8000/ui/saml/acs';

interface Ctx { dir: string; key: string; cert: string; otherKey: string; otherCert: string; login: SamlLogin }
const saml = suite<Ctx>('SamlLogin: signed assertions only, for us, in time, once');

saml.before(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), 'agate-saml-'));
  const ca = await makeTestCa(ctx.dir);
  const other = await ca.client('not-the-idp');
  [ctx.key, ctx.cert, ctx.otherKey, ctx.otherCert] = [ca.server.key, ca.server.cert, other.key, other.cert].map((f) => readFileSync(f, 'utf8')) as [string, string, string, string];
  const cfg: SamlConfig = { idp_entity_id: IDP, idp_sso_url: 'http://127.0.0.1:9/sso', idp_cert_file: ca.server.cert, sp_entity_id: SP, acs_url: ACS, clock_skew_s: 60, metadata_refresh_s: 3600 };
  ctx.login = new SamlLogin(cfg);
});

saml.after((ctx) => rmSync(ctx.dir, { recursive: true, force: true }));

interface Shape { requestId: string; assertionId?: string; audience?: string; issuer?: string; notOnOrAfterMs?: number; subject?: string }

function responseXml(s: Shape): string {
  const now = Date.now();
  const iso = (ms: number) => new Date(ms).toISOString();
  const until = iso(s.notOnOrAfterMs ?? now + 5 * 60_000);
  const issuer = s.issuer ?? IDP;
  return `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r${now}${Math.random().toString(16).slice(2)}" Version="2.0" IssueInstant="${iso(now)}" Destination="${ACS}" InResponseTo="${s.requestId}">`
    + `<saml:Issuer>${issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>`
    + `<saml:Assertion ID="${s.assertionId ?? `_a${Math.random().toString(16).slice(2)}`}" Version="2.0" IssueInstant="${iso(now - 1000)}"><saml:Issuer>${issuer}</saml:Issuer>`
    + `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${s.subject ?? 'alice'}</saml:NameID>`
    + `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData InResponseTo="${s.requestId}" NotOnOrAfter="${until}" Recipient="${ACS}"/></saml:SubjectConfirmation></saml:Subject>`
    + `<saml:Conditions NotBefore="${iso(now - 1000)}" NotOnOrAfter="${until}"><saml:AudienceRestriction><saml:Audience>${s.audience ?? SP}</saml:Audience></saml:AudienceRestriction></saml:Conditions>`
    + `<saml:AuthnStatement AuthnInstant="${iso(now - 1000)}" SessionIndex="idx-1"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`
    // Two values in one Attribute, and a third in a second Attribute of the same Name (Keycloak's way).
    + `<saml:AttributeStatement><saml:Attribute Name="groups"><saml:AttributeValue>admin</saml:AttributeValue><saml:AttributeValue>dba</saml:AttributeValue></saml:Attribute>`
    + `<saml:Attribute Name="groups"><saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">approver</saml:AttributeValue></saml:Attribute>`
    + `<saml:Attribute Name="email"><saml:AttributeValue>alice@example.test</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>`
    + `</saml:Assertion></samlp:Response>`;
}

/** Signs the Assertion element (enveloped, exclusive c14n, RSA-SHA256), the signature right after its Issuer. */
function signAssertion(xml: string, key: string, cert: string): string {
  const sig = new SignedXml({ privateKey: key, publicCert: cert, signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#' });
  sig.addReference({
    xpath: "//*[local-name(.)='Assertion']", digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
  });
  sig.computeSignature(xml, { location: { reference: "//*[local-name(.)='Assertion']/*[local-name(.)='Issuer']", action: 'after' } });
  return sig.getSignedXml();
}

const b64 = (xml: string) => Buffer.from(xml, 'utf8').toString('base64');

async function refusal(login: SamlLogin, response: string, why: RegExp): Promise<void> {
  try {
    await login.finish(b64(response));
  } catch (err) {
    assert.instance(err, AgateError);
    assert.is((err as AgateError).code, ErrorCode.CONSOLE_SIGN_IN_FAILED);
    assert.match((err as Error).message, why);
    return;
  }
  assert.unreachable(`accepted a response that should be refused (${why})`);
}

saml('begin: an HTTP-Redirect AuthnRequest to the IdP, its id known', async ({ login }) => {
  const { url, requestId } = await login.begin();
  assert.is(url.origin + url.pathname, 'http://127.0.0.1:9/sso');
  assert.ok(url.searchParams.get('SAMLRequest'));
  assert.match(requestId, /^_/);
  const again = await login.begin();
  assert.is.not(again.requestId, requestId);
});

saml('a signed assertion answering our request signs its subject in, with attributes as claims; the same response again is refused', async ({ login, key, cert }) => {
  const { requestId } = await login.begin();
  const signed = signAssertion(responseXml({ requestId }), key, cert);
  const got = await login.finish(b64(signed));
  assert.is(got.inResponseTo, requestId);
  assert.is(got.identity.issuer, IDP);
  assert.is(got.identity.subject, 'alice');
  assert.is(got.identity.claims.groups, '["admin","dba","approver"]');
  assert.is(got.identity.claims.email, 'alice@example.test');
  await refusal(login, signed, /InResponseTo/);
});

saml('an unsigned assertion is refused', async ({ login }) => {
  const { requestId } = await login.begin();
  await refusal(login, responseXml({ requestId }), /signature/i);
});

saml('an assertion signed by another key is refused', async ({ login, otherKey, otherCert }) => {
  const { requestId } = await login.begin();
  await refusal(login, signAssertion(responseXml({ requestId }), otherKey, otherCert), /signature/i);
});

saml('an assertion changed after signing is refused', async ({ login, key, cert }) => {
  const { requestId } = await login.begin();
  const signed = signAssertion(responseXml({ requestId }), key, cert);
  await refusal(login, signed.replace('>alice</saml:NameID>', '>mallory</saml:NameID>'), /signature/i);
});

saml('an assertion for another audience is refused', async ({ login, key, cert }) => {
  const { requestId } = await login.begin();
  await refusal(login, signAssertion(responseXml({ requestId, audience: 'some-other-sp' }), key, cert), /audience/i);
});

saml('an assertion from another issuer is refused', async ({ login, key, cert }) => {
  const { requestId } = await login.begin();
  await refusal(login, signAssertion(responseXml({ requestId, issuer: 'https://evil.test' }), key, cert), /issuer/i);
});

saml('an expired assertion is refused (beyond the clock skew)', async ({ login, key, cert }) => {
  const { requestId } = await login.begin();
  await refusal(login, signAssertion(responseXml({ requestId, notOnOrAfterMs: Date.now() - 2 * 60_000 }), key, cert), /expired|subject confirmation/i);
});

saml('a response to a request we never made is refused', async ({ login, key, cert }) => {
  await refusal(login, signAssertion(responseXml({ requestId: '_never-asked' }), key, cert), /InResponseTo/);
});

saml('a signed assertion replayed under a fresh request is refused by its assertion id', async ({ login, key, cert }) => {
  const first = await login.begin();
  await login.finish(b64(signAssertion(responseXml({ requestId: first.requestId, assertionId: '_same-assertion' }), key, cert)));
  const second = await login.begin();
  await refusal(login, signAssertion(responseXml({ requestId: second.requestId, assertionId: '_same-assertion' }), key, cert), /already used/);
});

saml('outstanding requests are bounded: after 10,000 newer sign-ins the oldest request is forgotten and its answer refused', async ({ login, key, cert }) => {
  const { requestId } = await login.begin();
  for (let i = 0; i < 10_000; i++) await login.begin();
  await refusal(login, signAssertion(responseXml({ requestId }), key, cert), /InResponseTo/);
  const { requestId: fresh } = await login.begin();
  assert.is((await login.finish(b64(signAssertion(responseXml({ requestId: fresh }), key, cert)))).inResponseTo, fresh);
});

saml('an unreadable IdP certificate file is a server fault, not a refused sign-in', async ({ dir, key, cert }) => {
  const broken = new SamlLogin({ idp_entity_id: IDP, idp_sso_url: 'http://127.0.0.1:9/sso', idp_cert_file: join(dir, 'missing.pem'), sp_entity_id: SP, acs_url: ACS, clock_skew_s: 60, metadata_refresh_s: 3600 });
  const { requestId } = await broken.begin();
  try {
    await broken.finish(b64(signAssertion(responseXml({ requestId }), key, cert)));
    assert.unreachable('accepted without a certificate');
  } catch (err) {
    assert.is((err as AgateError).code, ErrorCode.CONFIG_UNREADABLE);
  }
});

saml('metadata names our entity id and the POST ACS', ({ login }) => {
  const xml = login.metadata();
  assert.match(xml, `entityID="${SP}"`);
  assert.match(xml, /AssertionConsumerService[^>]*HTTP-POST[^>]*/);
  assert.match(xml, ACS);
  assert.match(xml, 'WantAssertionsSigned="true"');
});

saml.run();
