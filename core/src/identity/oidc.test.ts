import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { startOidcIssuer, type OidcIssuer } from '../../../test/harness/oidc-issuer.js';
import { AuthenticationError } from '../errors.js';
import { remoteIssuer, TokenVerifier } from './oidc.js';

/*
 * Token lifetimes and critical headers, with tokens from a real issuer serving its JWKS over HTTP:
 * an `iat` far in the future or a lifetime past the issuer's maximum is refused, within the clock
 * tolerance it is not, and an unknown `crit` extension is reported as such.
 */
const lifetimes = suite('OIDC token lifetimes and crit');
const ctx = {} as { issuer: OidcIssuer; verifier: TokenVerifier };
const now = () => Math.floor(Date.now() / 1000);

lifetimes.before(async () => {
  ctx.issuer = await startOidcIssuer({ audience: 'agate' });
  ctx.verifier = new TokenVerifier([
    remoteIssuer({ issuer: ctx.issuer.issuer, jwks_uri: ctx.issuer.jwksUri, audience: 'agate', algorithms: ['RS256', 'ES256'], clock_tolerance_s: 60, max_token_lifetime_s: 3600, subject_claim: 'sub', jwks_max_age_s: 60 }),
  ]);
});
lifetimes.after(() => ctx.issuer.close());

async function refusal(token: string): Promise<AuthenticationError> {
  try {
    await ctx.verifier.verify(token);
  } catch (err) {
    if (err instanceof AuthenticationError) return err;
    throw err;
  }
  throw new Error('the token was accepted');
}

lifetimes('a GitHub Actions-shaped token (minutes long) and one at exactly the maximum are accepted', async () => {
  assert.is((await ctx.verifier.verify(await ctx.issuer.mint(ctx.issuer.githubActionsClaims()))).subject, ctx.issuer.githubActionsClaims().sub);
  const t = now();
  await ctx.verifier.verify(await ctx.issuer.mint({ sub: 'gitlab-job', iat: t, exp: t + 3600 }));
  // iat a little ahead of this clock, within the tolerance: another host's clock, not an attack.
  await ctx.verifier.verify(await ctx.issuer.mint({ sub: 'skewed', iat: t + 30, exp: t + 330 }));
});

lifetimes('iat ten years ahead with exp a hundred years away is refused as issued in the future', async () => {
  const t = now();
  const err = await refusal(await ctx.issuer.mint({ sub: 'time-traveller', iat: t + 10 * 365 * 86400, exp: t + 100 * 365 * 86400 }));
  assert.is(err.code, 'AUTH_TOKEN_NOT_YET_VALID');
  assert.match(err.message, /issued in the future/);
  const slightly = await refusal(await ctx.issuer.mint({ sub: 'early', iat: t + 120, exp: t + 420 }));
  assert.is(slightly.code, 'AUTH_TOKEN_NOT_YET_VALID');
});

lifetimes('nbf beyond the clock tolerance is refused', async () => {
  const err = await refusal(await ctx.issuer.mint({ sub: 'later' }, { notBefore: 600 }));
  assert.is(err.code, 'AUTH_TOKEN_NOT_YET_VALID');
});

lifetimes('a lifetime past the maximum is refused, with or without iat', async () => {
  const t = now();
  const long = await refusal(await ctx.issuer.mint({ sub: 'long', iat: t, exp: t + 86400 }));
  assert.is(long.code, 'AUTH_TOKEN_LIFETIME_TOO_LONG');
  assert.match(long.message, /86400 s \(exp − iat\).*3600 s/);
  const noIat = await refusal(await ctx.issuer.mint({ sub: 'no-iat', iat: undefined, exp: t + 7200 }));
  assert.is(noIat.code, 'AUTH_TOKEN_LIFETIME_TOO_LONG');
  assert.match(noIat.message, /exp − now/);
  // A token issued long ago whose exp is still far away lived too long too (backdated iat).
  const backdated = await refusal(await ctx.issuer.mint({ sub: 'old', iat: t - 86400, exp: t + 60 }));
  assert.is(backdated.code, 'AUTH_TOKEN_LIFETIME_TOO_LONG');
});

lifetimes('an unknown crit extension is reported as such, not as an algorithm refusal', async () => {
  const err = await refusal(await ctx.issuer.mint({ sub: 'crit' }, { header: { crit: ['urn:example:ext'], 'urn:example:ext': true } }));
  assert.is(err.code, 'AUTH_CRIT_UNSUPPORTED');
  assert.match(err.message, /urn:example:ext/);
});
lifetimes.run();
