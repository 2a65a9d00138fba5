import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../../core/src/config.js';
import type { Identity } from '../../../schemas/src/events.js';
import { allows, roleResolver, type Permission } from './roles.js';

/* The permission table and where roles come from; the HTTP test checks the routes use it. */
const roles = suite('query roles');
const identity = (claims: Record<string, string>): Identity => ({ issuer: 'https://issuer.test', subject: 'someone', claims });
const rolesOf = (yaml: string) => roleResolver(parseConfig(`identity: { dev_issuer: { enabled: true } }\nquery: { ${yaml} }`, 'agate.yaml').query.roles);

roles('a token holding no role gets none by default, and so no permission but trying to answer', () => {
  const none = rolesOf('listen: 127.0.0.1:7480')(identity({ repository: 'acme/app' }));
  assert.equal([...none], []);
  for (const p of ['read', 'sql', 'export', 'verify', 'approvals', 'terminate'] as Permission[]) assert.not.ok(allows(none, p), p);
  assert.ok(allows(none, 'answer'), 'the approval route records the refused attempt itself');
});

roles('each role grants its documented permissions', () => {
  const resolve = rolesOf('roles: { claim: groups }');
  const grants = (role: string) => (['read', 'sql', 'export', 'verify', 'approvals', 'terminate'] as Permission[]).filter((p) => allows(resolve(identity({ groups: JSON.stringify([role]) })), p));
  assert.equal(grants('analyst'), ['read', 'sql', 'export', 'verify', 'approvals']);
  assert.equal(grants('auditor'), ['read', 'export', 'verify', 'approvals']);
  assert.equal(grants('approver'), ['approvals']);
  assert.equal(grants('admin'), ['read', 'sql', 'export', 'verify', 'approvals', 'terminate']);
  assert.equal(grants('agents'), []);
});

roles('an operator may still choose a default role', () => {
  const resolve = rolesOf('roles: { default_role: auditor }');
  assert.equal([...resolve(identity({}))], ['auditor']);
  assert.throws(() => rolesOf('roles: { default_role: superuser }'), /default_role/);
});
roles.run();
