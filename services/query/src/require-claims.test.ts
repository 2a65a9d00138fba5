import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../../core/src/config.js';
import type { Identity } from '../../../schemas/src/events.js';
import { claimsAuthorizer } from './require-claims.js';

const required = suite('claimsAuthorizer (query.require_claims)');
const who = (claims: Record<string, string>, subject = 'repo:acme/app:ref:refs/heads/main'): Identity => ({ issuer: 'https://token.actions.example', subject, claims });
const authorizerOf = (yaml: string) => claimsAuthorizer(parseConfig(`identity: { dev_issuer: { enabled: true } }\nquery: { require_claims: ${yaml} }\n`, 'agate.yaml').query.require_claims);

required('no required claims: every verified identity may use the API', () => {
  assert.ok(authorizerOf('{}')(who({})));
});

required('every claim must match one of its globs; a missing claim fails', () => {
  const authorize = authorizerOf("{ repository_owner: acme, environment: [prod, 'audit-*'] }");
  assert.ok(authorize(who({ repository_owner: 'acme', environment: 'audit-eu' })));
  assert.not.ok(authorize(who({ repository_owner: 'acme', environment: 'staging' })), 'no glob matches');
  assert.not.ok(authorize(who({ repository_owner: 'acme' })), 'environment is missing');
  assert.not.ok(authorize(who({ repository_owner: 'evil', environment: 'prod' })));
});

required('sub and iss are the identity\'s subject and issuer, not claims of those names', () => {
  const authorize = authorizerOf("{ sub: 'repo:acme/*', iss: 'https://token.actions.example' }");
  assert.ok(authorize(who({})));
  assert.not.ok(authorize(who({ sub: 'repo:acme/app' }, 'repo:other/app')), 'a claim named sub does not stand in for the subject');
});

required.run();
