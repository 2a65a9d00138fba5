import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { setTimeout as sleep } from 'node:timers/promises';
import { startOidcIssuer, type OidcIssuer } from '../../../test/harness/oidc-issuer.js';
import { parseConfig, type IssuerConfig } from '../config.js';
import { KEY_SET_MIN_AGE_MS, remoteIssuer, TokenVerifier } from './oidc.js';
import { refusal } from './refusal.test-support.js';

/*
 * A token that should no longer be good: signed by a key the issuer took out of its key set
 * (revoked), or minted by the issuer for another of its clients with Agate's audience among
 * others (`azp` names that client). A real issuer serves the key set over HTTP.
 */
const test = suite('OIDC tokens revoked or minted for another client');
const ctx = {} as { issuer: OidcIssuer };
const cfg = (issuer: OidcIssuer, extra: Partial<IssuerConfig> = {}): IssuerConfig => ({ issuer: issuer.issuer, jwks_uri: issuer.jwksUri, audience: 'agate', algorithms: ['RS256', 'ES256'] as IssuerConfig['algorithms'], clock_tolerance_s: 60, max_token_lifetime_s: 3600, subject_claim: 'sub', jwks_max_age_s: 60, ...extra });

test.before(async () => {
  ctx.issuer = await startOidcIssuer({ audience: 'agate' });
});
test.after(() => ctx.issuer.close());

test('a key taken out of the key set stops verifying once jwks_max_age_s has passed, whatever Cache-Control says', async () => {
  const issuer = await startOidcIssuer({ audience: 'agate' });
  try {
    issuer.cacheControl = 'public, max-age=86400';
    const verifier = new TokenVerifier([remoteIssuer(cfg(issuer, { jwks_max_age_s: 2 }))]);
    assert.is((await verifier.verify(await issuer.mint({ sub: 'before' }))).subject, 'before');
    issuer.withdraw('RS256');
    await sleep(2300);
    // Before: jose's cache kept the removed key for 10 minutes, and this token verified.
    assert.is((await refusal(verifier, await issuer.mint({ sub: 'revoked' }))).code, 'AUTH_SIGNATURE_INVALID');
    assert.is((await verifier.verify(await issuer.mint({ sub: 'still' }, { alg: 'ES256' }))).subject, 'still');
  } finally {
    await issuer.close();
  }
});

test('a shorter Cache-Control max-age from the key set is honoured, down to the floor', async () => {
  const issuer = await startOidcIssuer({ audience: 'agate' });
  try {
    issuer.cacheControl = 'max-age=0';
    const verifier = new TokenVerifier([remoteIssuer(cfg(issuer, { jwks_max_age_s: 600 }))]);
    assert.is((await verifier.verify(await issuer.mint({ sub: 'before' }))).subject, 'before');
    issuer.withdraw('RS256');
    // max-age=0 does not make Agate ask the issuer for every token: thirty tokens at once, one fetch.
    const before = issuer.requests;
    for (let i = 0; i < 30; i++) await verifier.verify(await issuer.mint({ sub: `t${i}` }, { alg: 'ES256' }));
    assert.ok(issuer.requests - before <= 1, `${issuer.requests - before} fetches for 30 tokens`);
    await sleep(KEY_SET_MIN_AGE_MS + 300);
    assert.is((await refusal(verifier, await issuer.mint({ sub: 'revoked' }))).code, 'AUTH_SIGNATURE_INVALID');
  } finally {
    await issuer.close();
  }
});

test('azp naming another client of the issuer is refused even when aud includes Agate', async () => {
  const verifier = new TokenVerifier([remoteIssuer(cfg(ctx.issuer))]);
  const mint = (claims: Record<string, unknown>, audience: string | string[]) => ctx.issuer.mint({ sub: 'x', ...claims }, { audience });
  // Before: each of these verified, the identity being whatever the other client's token said.
  assert.is((await refusal(verifier, await mint({ azp: 'other-client' }, ['other-client', 'agate']))).code, 'AUTH_AZP_REFUSED');
  assert.is((await refusal(verifier, await mint({ azp: 'other-client' }, 'agate'))).code, 'AUTH_AZP_REFUSED');
  // Several audiences and no azp: nothing says the token was meant for Agate.
  assert.is((await refusal(verifier, await mint({}, ['other-client', 'agate']))).code, 'AUTH_AZP_REFUSED');
  // Tokens minted for Agate: azp is Agate's audience, or absent with Agate the only audience (CI tokens).
  assert.is((await verifier.verify(await mint({ sub: 'own', azp: 'agate' }, ['other-client', 'agate']))).subject, 'own');
  assert.is((await verifier.verify(await mint({ sub: 'ci' }, 'agate'))).subject, 'ci');
  assert.is((await verifier.verify(await mint({ sub: 'k8s' }, ['agate']))).subject, 'k8s');
});

test('identity.issuers[].allowed_azp names the clients whose tokens are accepted; "*" accepts any', async () => {
  const listed = new TokenVerifier([remoteIssuer(cfg(ctx.issuer, { allowed_azp: ['ci-bot'] }))]);
  assert.is((await listed.verify(await ctx.issuer.mint({ sub: 'bot', azp: 'ci-bot' }, { audience: ['account', 'agate'] }))).subject, 'bot');
  assert.is((await refusal(listed, await ctx.issuer.mint({ sub: 'me', azp: 'agate' }))).code, 'AUTH_AZP_REFUSED');
  const any = new TokenVerifier([remoteIssuer(cfg(ctx.issuer, { allowed_azp: ['*'] }))]);
  assert.is((await any.verify(await ctx.issuer.mint({ sub: 'multi' }, { audience: ['other-client', 'agate'] }))).subject, 'multi');
  assert.is((await any.verify(await ctx.issuer.mint({ sub: 'other', azp: 'other-client' }))).subject, 'other');
});

test('the config bounds jwks_max_age_s and defaults it to a minute', () => {
  const yaml = (extra: string) => `identity:\n  issuers:\n    - issuer: https://issuer.example\n      audience: agate\n${extra}`;
  assert.is(parseConfig(yaml(''), 'agate.yaml').identity.issuers[0]!.jwks_max_age_s, 60);
  assert.throws(() => parseConfig(yaml('      jwks_max_age_s: 3600\n'), 'agate.yaml'), /jwks_max_age_s/);
  assert.throws(() => parseConfig(yaml('      allowed_azp: []\n'), 'agate.yaml'), /allowed_azp/);
});

test.run();
