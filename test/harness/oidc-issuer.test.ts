import { test } from './suite.js';
import * as assert from 'uvu/assert';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTVerifyOptions } from 'jose';
import { startOidcIssuer, type OidcIssuer } from './oidc-issuer.js';

// Each test owns its issuer and closes it even when an assertion fails.
async function withIssuer(fn: (iss: OidcIssuer) => Promise<void>): Promise<void> {
  const iss = await startOidcIssuer({ audience: 'agate' });
  try {
    await fn(iss);
  } finally {
    await iss.close();
  }
}

async function getJson(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url);
  assert.is(res.status, 200, url);
  return (await res.json()) as Record<string, unknown>;
}

/** Verifies the way a relying party would: discovery -> jwks_uri -> jwtVerify. */
async function verify(iss: OidcIssuer, token: string, extra: Partial<JWTVerifyOptions> = {}) {
  const discovery = await getJson(`${iss.issuer}/.well-known/openid-configuration`);
  const jwks = createRemoteJWKSet(new URL(String(discovery.jwks_uri)));
  return jwtVerify(token, jwks, { issuer: iss.issuer, audience: 'agate', ...extra });
}

async function failure(p: Promise<unknown>, what: string): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  assert.unreachable(`expected failure: ${what}`);
  throw new Error('unreachable'); // for the type checker; unreachable() already threw
}

test('serves discovery and JWKS over HTTP', async () => {
  await withIssuer(async (iss) => {
    assert.match(iss.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    const discovery = await getJson(`${iss.issuer}/.well-known/openid-configuration`);
    assert.is(discovery.issuer, iss.issuer);
    assert.is(discovery.jwks_uri, `${iss.issuer}/.well-known/jwks`);
    const jwks = (await getJson(iss.jwksUri)) as { keys: Array<Record<string, unknown>> };
    assert.equal(jwks.keys.map((k) => [k.kid, k.alg, k.kty]), [
      [iss.kids.RS256, 'RS256', 'RSA'],
      [iss.kids.ES256, 'ES256', 'EC'],
    ]);
    for (const k of jwks.keys) assert.not.ok('d' in k, 'private key material published');
    assert.is(iss.requests, 1);
    assert.is((await fetch(`${iss.issuer}/nope`)).status, 404);
  });
});

test('minted RS256 and ES256 tokens verify against the remote JWKS', async () => {
  await withIssuer(async (iss) => {
    const gh = iss.githubActionsClaims();
    const { payload, protectedHeader } = await verify(iss, await iss.mint(gh));
    assert.is(protectedHeader.kid, iss.kids.RS256);
    assert.is(payload.sub, 'repo:acme/app:ref:refs/heads/main');
    assert.is(payload.repository_owner, 'acme');
    assert.is(payload.aud, 'agate');

    const gl = iss.gitlabCiClaims({ project_path: 'acme/platform/api', ref: 'v1.2.0', ref_type: 'tag' });
    const es = await verify(iss, await iss.mint(gl, { alg: 'ES256' }));
    assert.is(es.protectedHeader.alg, 'ES256');
    assert.is(es.payload.sub, 'project_path:acme/platform/api:ref_type:tag:ref:v1.2.0');
    assert.is(es.payload.namespace_path, 'acme/platform');
    assert.ok(iss.requests >= 2);
  });
});

test('issuer and audience are checked', async () => {
  await withIssuer(async (iss) => {
    const otherAud = await iss.mint({ sub: 'x' }, { audience: 'someone-else' });
    assert.is((await failure(verify(iss, otherAud), 'wrong audience')).code, 'ERR_JWT_CLAIM_VALIDATION_FAILED');
    const otherIss = await iss.mint({ sub: 'x' }, { issuer: 'https://token.actions.githubusercontent.com' });
    assert.is((await failure(verify(iss, otherIss), 'wrong issuer')).code, 'ERR_JWT_CLAIM_VALIDATION_FAILED');
    const early = await iss.mint({ sub: 'x' }, { notBefore: 600 });
    assert.is((await failure(verify(iss, early), 'not yet valid')).code, 'ERR_JWT_CLAIM_VALIDATION_FAILED');
  });
});

test('expired, foreign-key and unsigned tokens are rejected', async () => {
  await withIssuer(async (iss) => {
    const expired = await iss.mintExpired({ sub: 'x' });
    assert.is((await failure(verify(iss, expired), 'expired')).code, 'ERR_JWT_EXPIRED');

    const forged = await iss.mintWithForeignKey({ sub: 'x' });
    assert.is(decodeProtectedHeader(forged).kid, iss.kids.RS256);
    assert.is((await failure(verify(iss, forged), 'foreign key')).code, 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');

    const unsigned = iss.mintUnsigned({ sub: 'x' });
    assert.ok(unsigned.endsWith('.'));
    assert.equal(decodeProtectedHeader(unsigned), { alg: 'none' });
    const err = await failure(verify(iss, unsigned), 'alg none');
    // jose refuses "none" before any key lookup; which refusal depends on the key resolver.
    const refusals = ['ERR_JOSE_NOT_SUPPORTED', 'ERR_JOSE_ALG_NOT_ALLOWED', 'ERR_JWS_INVALID'];
    assert.ok(refusals.includes(String(err.code)), `${err.code}: ${err.message}`);
  });
});

test.run();
