/**
 * The attribute of a PostgreSQL command that runs code stored in the database, which its text
 * does not show: a trigger, rule, view, row security policy, column default, constraint or index
 * expression of a relation it touches, an event trigger fired by its DDL, or a function, operator
 * or cast made earlier (by anyone: another session, the agent itself). The proxy finds these in
 * the target's catalog (services/ingress-proxy/src/pg/stored-code.ts) and names them here,
 * `; `-separated; policy then gives the statement the guarded effect `stored` (effects.ts).
 */
export const STORED_CODE_ATTRIBUTE = 'stored_code';
