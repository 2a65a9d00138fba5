import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startOidcIssuer, type OidcIssuer } from '../../../test/harness/oidc-issuer.js';
import type { IssuerConfig } from '../config.js';
import { remoteIssuer, TokenVerifier } from './oidc.js';
import { refusal } from './refusal.test-support.js';

/*
 * Tokens forged or bent by a client that can reach a proxy or the query API: keys the token
 * carries or points at, kids that name no key, an issuer spelt with a slash more, audiences in an
 * array, an issuer whose discovery or key set is down. A real issuer serves its JWKS over HTTP;
 * a second server stands for the attacker's.
 */
const test = suite('OIDC tokens from a hostile client');
const ctx = {} as { issuer: OidcIssuer; verifier: TokenVerifier; attacker: Server; attackerUrl: string; attackerHits: number };
const now = () => Math.floor(Date.now() / 1000);
const cfg = (issuer: OidcIssuer, extra: Partial<IssuerConfig> = {}): IssuerConfig => ({ issuer: issuer.issuer, jwks_uri: issuer.jwksUri, audience: 'agate', algorithms: ['RS256', 'ES256'] as IssuerConfig['algorithms'], clock_tolerance_s: 60, max_token_lifetime_s: 3600, subject_claim: 'sub', jwks_max_age_s: 60, ...extra });

test.before(async () => {
  ctx.issuer = await startOidcIssuer({ audience: 'agate' });
  ctx.verifier = new TokenVerifier([remoteIssuer(cfg(ctx.issuer))]);
  ctx.attackerHits = 0;
  ctx.attacker = createServer((_req, res) => (ctx.attackerHits++, res.writeHead(500), res.end()));
  await new Promise<void>((r) => ctx.attacker.listen(0, '127.0.0.1', r));
  ctx.attackerUrl = `http://127.0.0.1:${(ctx.attacker.address() as AddressInfo).port}`;
});
test.after(async () => {
  await ctx.issuer.close();
  await new Promise((r) => ctx.attacker.close(r));
});

test('a key carried in the header (jwk), or pointed at (jku, x5u), is never used nor fetched', async () => {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = await exportJWK(publicKey);
  const claims = { iss: ctx.issuer.issuer, aud: 'agate', sub: 'forger', iat: now(), exp: now() + 300 };
  for (const header of [{ jwk }, { jku: `${ctx.attackerUrl}/jwks` }, { x5u: `${ctx.attackerUrl}/cert.pem` }, { jwk, kid: ctx.issuer.kids.RS256 }]) {
    const token = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...header }).sign(privateKey);
    assert.is((await refusal(ctx.verifier, token)).code, 'AUTH_SIGNATURE_INVALID', JSON.stringify(Object.keys(header)));
  }
  assert.is(ctx.attackerHits, 0);
});

test('fifty kids that name no key fetch the key set at most twice', async () => {
  await ctx.verifier.verify(await ctx.issuer.mint({ sub: 'warm' }));
  const before = ctx.issuer.requests;
  for (let i = 0; i < 50; i++) {
    const t = await ctx.issuer.mintWithForeignKey({ sub: `kid-${i}` }, { kid: `nowhere-${i}` });
    assert.is((await refusal(ctx.verifier, t)).code, 'AUTH_SIGNATURE_INVALID');
  }
  assert.ok(ctx.issuer.requests - before <= 2, `${ctx.issuer.requests - before} fetches`);
});

test('an issuer with a trailing slash more is another issuer', async () => {
  const token = await ctx.issuer.mint({ sub: 'slash' }, { issuer: `${ctx.issuer.issuer}/` });
  assert.is((await refusal(ctx.verifier, token)).code, 'AUTH_ISSUER_UNTRUSTED');
});

test('aud as an array naming agate among others is accepted (with azp agate, oidc-hostile-2); one that does not name it is refused', async () => {
  assert.is((await ctx.verifier.verify(await ctx.issuer.mint({ sub: 'multi', azp: 'agate' }, { audience: ['other-client', 'agate'] }))).subject, 'multi');
  assert.is((await refusal(ctx.verifier, await ctx.issuer.mint({ sub: 'multi' }, { audience: ['other-client', 'agate-console'] }))).code, 'AUTH_AUDIENCE_MISMATCH');
});

test('a megabyte token is refused as malformed without being decoded', async () => {
  const big = `${Buffer.from(JSON.stringify({ alg: 'RS256', pad: 'a'.repeat(1 << 20) })).toString('base64url')}.e30.sig`;
  assert.is((await refusal(ctx.verifier, big)).code, 'AUTH_TOKEN_MALFORMED');
});

test('an issuer whose discovery fails is asked at most once per cooldown, whatever the number of tokens', async () => {
  let hits = 0;
  const down = createServer((_req, res) => (hits++, res.writeHead(503), res.end()));
  await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
  const iss = `http://127.0.0.1:${(down.address() as AddressInfo).port}`;
  try {
    const verifier = new TokenVerifier([remoteIssuer({ ...cfg(ctx.issuer), issuer: iss, jwks_uri: undefined })]);
    const token = await ctx.issuer.mint({ sub: 'flood' }, { issuer: iss });
    for (let i = 0; i < 20; i++) assert.is((await refusal(verifier, token)).code, 'AUTH_JWKS_UNAVAILABLE');
    assert.ok(hits <= 2, `${hits} discovery requests for 20 tokens`);
  } finally {
    await new Promise((r) => down.close(r));
  }
});

test('an issuer whose key set fails is asked at most once per cooldown, whatever the number of tokens', async () => {
  let hits = 0;
  const down = createServer((_req, res) => (hits++, res.writeHead(503), res.end()));
  await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(down.address() as AddressInfo).port}`;
  try {
    const verifier = new TokenVerifier([remoteIssuer({ ...cfg(ctx.issuer), issuer: url, jwks_uri: `${url}/jwks` })]);
    const token = await ctx.issuer.mint({ sub: 'flood' }, { issuer: url });
    // Before, a 503 from the key set was the token's fault (AUTH_TOKEN_MALFORMED, not retriable),
    // counted against the agent's address by the failed-login throttle, and asked again each time.
    for (let i = 0; i < 20; i++) {
      const err = await refusal(verifier, token);
      assert.is(err.code, 'AUTH_JWKS_UNAVAILABLE');
      assert.ok(err.retriable);
    }
    assert.ok(hits <= 2, `${hits} key set requests for 20 tokens`);
  } finally {
    await new Promise((r) => down.close(r));
  }
});

test.run();
