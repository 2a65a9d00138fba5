/**
 * Statements for the facts corpus test, one a line: `effects | tables | sql`. Effects listed must
 * all be found (others may be too); tables are `w:name` (written) or `r:name` (read), all of which
 * must be found, `-` for none required. Written for Agate, one or more per statement node type and
 * object kind, with the shapes that hid facts before (unwrapped relations, MERGE actions, bodies).
 */
export const CORPUS = String.raw`
# --- SELECT and its shapes
read | r:users | SELECT * FROM users
read | r:users r:orders | SELECT u.id FROM users u JOIN orders o ON o.user_id = u.id
read | r:a r:b r:c | SELECT * FROM a LEFT JOIN b USING (id) FULL JOIN c ON true
read | r:a r:b | SELECT * FROM a NATURAL JOIN b
read | r:a r:b | SELECT * FROM a CROSS JOIN LATERAL (SELECT * FROM b WHERE b.id = a.id) s
read | r:users | SELECT * FROM (SELECT * FROM users) s
read | r:app.users | SELECT count(*) FROM app.users
read | r:users | SELECT * FROM ONLY users
read | r:users | SELECT * FROM users TABLESAMPLE SYSTEM (10)
read | r:a r:b | SELECT 1 FROM a UNION SELECT 2 FROM b
read | r:a r:b | SELECT 1 FROM a INTERSECT ALL SELECT 2 FROM b
read | r:a r:b | SELECT 1 FROM a EXCEPT SELECT 2 FROM b
read | r:t | WITH x AS (SELECT * FROM t) SELECT * FROM x
read | r:t | WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < (SELECT max(id) FROM t)) SELECT * FROM r
read | r:t | SELECT EXISTS (SELECT 1 FROM t)
read | r:t | SELECT 1 WHERE 1 IN (SELECT id FROM t)
read | r:t | SELECT ARRAY(SELECT id FROM t)
read | r:t | SELECT (SELECT max(id) FROM t) AS m
read write | w:t | SELECT * FROM t FOR UPDATE SKIP LOCKED
read write | w:t | SELECT * FROM t FOR SHARE NOWAIT
read write | w:t | SELECT * FROM t FOR NO KEY UPDATE
read write | w:t | SELECT * FROM t FOR KEY SHARE
read write | w:a w:b | SELECT * FROM a JOIN b USING (id) FOR UPDATE OF a
read write | w:t | SELECT * FROM (SELECT * FROM t) s FOR UPDATE
read write | w:t r:u | SELECT * FROM u WHERE id IN (SELECT id FROM t FOR UPDATE)
read write | w:t | WITH x AS (SELECT * FROM t FOR SHARE) SELECT * FROM x
read write | w:t | DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE
read | r:t | SELECT id, rank() OVER (PARTITION BY k ORDER BY v) FROM t
read | r:t | SELECT k, count(*) FROM t GROUP BY ROLLUP (k) HAVING count(*) > 1
read | r:t | SELECT DISTINCT ON (k) * FROM t ORDER BY k, v DESC LIMIT 5 OFFSET 2
read | r:t | SELECT * FROM t ORDER BY a FETCH FIRST 3 ROWS WITH TIES
read | - | SELECT 1
read | - | VALUES (1, 'a'), (2, 'b')
read | - | SELECT * FROM generate_series(1, 10) g
read | r:t | SELECT * FROM generate_series(1, (SELECT count(*) FROM t)) g
read | r:t | SELECT * FROM ROWS FROM (generate_series(1, 2), unnest(ARRAY(SELECT id FROM t)))
read | r:t | SELECT * FROM t, LATERAL unnest(t.tags) AS tag
read | r:t | SELECT * FROM XMLTABLE('/r' PASSING (SELECT x FROM t) COLUMNS a int)
read | r:t | SELECT * FROM JSON_TABLE((SELECT j FROM t), '$[*]' COLUMNS (a int PATH '$.a')) jt
read | r:t | SELECT CASE WHEN (SELECT true FROM t) THEN 1 ELSE 2 END
read | r:t | SELECT coalesce((SELECT a FROM t), 0)
read | r:t | TABLE t
read | r:t r:u | SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id)
read | r:t | SELECT t.*::text FROM t
read | r:t | SELECT row_to_json(t) FROM t
read | r:t | SELECT * FROM t WHERE id = ANY(ARRAY(SELECT 1))
read | r:pg_catalog.pg_class | SELECT relname FROM pg_catalog.pg_class
read | r:information_schema.tables | SELECT * FROM information_schema.tables
read | r:t | SELECT pg_sleep(0) FROM t
read | r:t | SELECT * FROM t GROUP BY GROUPING SETS ((a), (b), ())
read | r:t | SELECT a FROM t WINDOW w AS (ORDER BY a)
read | r:t | SELECT string_agg(a, ',' ORDER BY a) FILTER (WHERE a IS NOT NULL) FROM t
read | r:t | SELECT * FROM t WHERE a IS DISTINCT FROM (SELECT b FROM t LIMIT 1)
read ddl write | w:newt r:t | SELECT * INTO newt FROM t
read ddl write | w:tmp_t r:t | SELECT * INTO TEMP tmp_t FROM t

# --- INSERT
write | w:users | INSERT INTO users VALUES (1)
write | w:users | INSERT INTO users (id, name) VALUES (1, 'a'), (2, 'b')
write | w:users r:staging | INSERT INTO users SELECT * FROM staging
write | w:users | INSERT INTO users DEFAULT VALUES
write | w:users | INSERT INTO users VALUES (1) ON CONFLICT DO NOTHING
write | w:users | INSERT INTO users VALUES (1) ON CONFLICT (id) DO UPDATE SET name = excluded.name
write | w:users | INSERT INTO users AS u VALUES (1) ON CONFLICT ON CONSTRAINT users_pkey DO UPDATE SET n = u.n + 1 WHERE u.id > 0
write | w:app.users | INSERT INTO app.users VALUES (1) RETURNING *
write | w:users r:src | WITH s AS (SELECT * FROM src) INSERT INTO users SELECT * FROM s
write | w:users | INSERT INTO users OVERRIDING SYSTEM VALUE VALUES (1)
write | w:log r:t | INSERT INTO log SELECT * FROM t WHERE id IN (SELECT id FROM t)

# --- UPDATE
write | w:users | UPDATE users SET name = 'x' WHERE id = 1
write destroy | w:users | UPDATE users SET name = 'x'
write | w:users r:src | UPDATE users u SET name = s.name FROM src s WHERE u.id = s.id
write | w:users r:t | UPDATE users SET (a, b) = (SELECT a, b FROM t WHERE t.id = users.id) WHERE true
write | w:users | UPDATE ONLY users SET a = DEFAULT WHERE id = 1 RETURNING id
write | w:users | UPDATE users SET a = 1 WHERE CURRENT OF c
write | w:app.users | UPDATE app.users AS u SET a = u.a + 1 WHERE u.id = 3

# --- DELETE
write | w:users | DELETE FROM users WHERE id = 1
write destroy | w:users | DELETE FROM users
write | w:t r:users | DELETE FROM t USING users WHERE t.id = users.id
write | w:users | DELETE FROM ONLY users WHERE id = 1 RETURNING *
write | w:users r:banned | DELETE FROM users WHERE id IN (SELECT id FROM banned)
write | w:users | DELETE FROM users WHERE CURRENT OF c

# --- data-modifying CTEs
write read destroy | w:users | WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d
write read | w:users | WITH u AS (UPDATE users SET a = 1 WHERE id = 2 RETURNING *) SELECT count(*) FROM u
write read | w:log | WITH i AS (INSERT INTO log VALUES (1) RETURNING id) SELECT id FROM i
write | w:archive w:users | WITH moved AS (DELETE FROM users WHERE old RETURNING *) INSERT INTO archive SELECT * FROM moved
write | w:users | WITH m AS (MERGE INTO users USING src ON true WHEN MATCHED THEN DO NOTHING RETURNING *) SELECT 1 FROM m

# --- MERGE
write | w:users r:src | MERGE INTO users u USING src s ON u.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a
write destroy | w:users r:src | MERGE INTO users u USING src s ON u.id = s.id WHEN MATCHED THEN DELETE
write | w:users r:src | MERGE INTO users u USING src s ON u.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)
write destroy | w:users r:src | MERGE INTO users u USING (SELECT * FROM src) s ON u.id = s.id WHEN MATCHED AND s.del THEN DELETE WHEN MATCHED THEN UPDATE SET a = 1 WHEN NOT MATCHED THEN INSERT DEFAULT VALUES
write destroy | w:users r:src | MERGE INTO users u USING src s ON u.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE
write | w:users r:src | MERGE INTO users u USING src s ON u.id = s.id WHEN MATCHED THEN DO NOTHING

# --- COPY
write | w:users | COPY users FROM STDIN
write | w:users | COPY users (id, name) FROM STDIN WITH (FORMAT csv, HEADER true)
read | r:users | COPY users TO STDOUT
read | r:users | COPY (SELECT * FROM users) TO STDOUT WITH (FORMAT binary)
write read | w:users | COPY (DELETE FROM users WHERE id = 1 RETURNING *) TO STDOUT
read admin | r:users | COPY users TO '/tmp/users.csv'
write admin | w:users | COPY users FROM '/tmp/users.csv'
write admin | w:users | COPY users FROM PROGRAM 'cat /etc/passwd'
read admin | r:users | COPY users TO PROGRAM 'gzip > /tmp/u.gz'
write | w:users | COPY users FROM STDIN WHERE id > 3

# --- TRUNCATE / LOCK
write destroy | w:users | TRUNCATE users
write destroy | w:users w:orders | TRUNCATE TABLE users, orders RESTART IDENTITY CASCADE
write destroy | w:users | TRUNCATE ONLY users
admin | w:users | LOCK TABLE users
admin | w:users w:orders | LOCK users, orders IN SHARE ROW EXCLUSIVE MODE NOWAIT
read | r:users | LOCK TABLE users IN ACCESS SHARE MODE
read | r:users | LOCK users IN ROW SHARE MODE NOWAIT
admin | w:users | LOCK users IN SHARE MODE

# --- tables
ddl | w:t | CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL)
ddl | w:app.t | CREATE TABLE IF NOT EXISTS app.t (id bigint GENERATED ALWAYS AS IDENTITY)
ddl | w:t r:users | CREATE TABLE t (id int REFERENCES users (id) ON DELETE CASCADE)
ddl | w:t r:users | CREATE TABLE t (id int, FOREIGN KEY (id) REFERENCES users)
ddl | w:t | CREATE UNLOGGED TABLE t (a int CHECK (a > 0), b text DEFAULT 'x')
ddl | w:t | CREATE TEMP TABLE t (a int) ON COMMIT DROP
ddl | w:child w:parent | CREATE TABLE child (x int) INHERITS (parent)
ddl | w:p | CREATE TABLE p (id int, k date) PARTITION BY RANGE (k)
ddl | w:p2024 w:p | CREATE TABLE p2024 PARTITION OF p FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
ddl | w:t | CREATE TABLE t (LIKE users INCLUDING ALL)
ddl | w:t | CREATE TABLE t OF mytype
ddl | w:t | CREATE TABLE t (a int) WITH (fillfactor = 70) TABLESPACE fast
ddl | w:t | CREATE TABLE t (a int, b int GENERATED ALWAYS AS (a * 2) STORED)
ddl | w:t | CREATE TABLE t (a int, EXCLUDE USING gist (a WITH =))
ddl write | w:t r:users | CREATE TABLE t AS SELECT * FROM users
ddl write | w:t r:users | CREATE TABLE t AS SELECT * FROM users WITH NO DATA
ddl write | w:mv r:users | CREATE MATERIALIZED VIEW mv AS SELECT * FROM users
ddl write | w:t | CREATE TABLE t AS EXECUTE prep(1)
ddl | w:users | ALTER TABLE users ADD COLUMN email text
ddl | w:users | ALTER TABLE IF EXISTS users ALTER COLUMN email SET NOT NULL
ddl | w:users | ALTER TABLE users ALTER COLUMN email TYPE varchar(10) USING email::varchar(10)
ddl | w:users | ALTER TABLE users ALTER COLUMN a SET DEFAULT 1
ddl | w:users r:orgs | ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (org) REFERENCES orgs (id)
ddl | w:users | ALTER TABLE users ADD CONSTRAINT u UNIQUE (email)
ddl | w:users | ALTER TABLE users VALIDATE CONSTRAINT fk
ddl | w:users | ALTER TABLE users RENAME COLUMN a TO b
ddl | w:users | ALTER TABLE users RENAME TO people
ddl | w:users | ALTER TABLE users RENAME CONSTRAINT a TO b
ddl | w:users | ALTER TABLE users SET SCHEMA archive
ddl | w:users | ALTER TABLE users SET (fillfactor = 50)
ddl | w:users | ALTER TABLE users SET TABLESPACE slow
ddl | w:users | ALTER TABLE users SET UNLOGGED
ddl | w:users | ALTER TABLE users CLUSTER ON users_pkey
ddl | w:users | ALTER TABLE users REPLICA IDENTITY FULL
ddl | w:users | ALTER TABLE users ENABLE TRIGGER ALL
ddl | w:users | ALTER TABLE users DISABLE TRIGGER audit
ddl | w:users | ALTER TABLE users ALTER COLUMN a SET STATISTICS 100
ddl | w:users | ALTER TABLE users ALTER COLUMN a ADD GENERATED ALWAYS AS IDENTITY
ddl | w:p w:p2023 | ALTER TABLE p ATTACH PARTITION p2023 FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')
ddl | w:users | ALTER TABLE users INHERIT parent
ddl destroy | w:users | ALTER TABLE users DROP COLUMN email
ddl destroy | w:users | ALTER TABLE users DROP COLUMN IF EXISTS email CASCADE
ddl destroy | w:users | ALTER TABLE users DROP CONSTRAINT users_pkey
ddl destroy | w:users | ALTER TABLE users ADD COLUMN x int, DROP COLUMN y
ddl destroy | w:p w:p2023 | ALTER TABLE p DETACH PARTITION p2023
ddl destroy | w:p | ALTER TABLE p DETACH PARTITION p2023 CONCURRENTLY
ddl destroy | w:users | ALTER TABLE users NO INHERIT parent
ddl privilege | w:users | ALTER TABLE users OWNER TO bob
ddl privilege | w:users | ALTER TABLE users ENABLE ROW LEVEL SECURITY
ddl privilege | w:users | ALTER TABLE users NO FORCE ROW LEVEL SECURITY
ddl | w:users | ALTER TABLE users ALTER COLUMN a SET STORAGE EXTERNAL
ddl admin | - | ALTER TABLE ALL IN TABLESPACE a SET TABLESPACE b
ddl destroy | w:users | DROP TABLE users
ddl destroy | w:users w:app.orders | DROP TABLE IF EXISTS users, app.orders CASCADE
ddl destroy | w:v | DROP VIEW v
ddl destroy | w:mv | DROP MATERIALIZED VIEW mv
ddl destroy | w:s | DROP SEQUENCE s
ddl destroy | w:users_idx | DROP INDEX CONCURRENTLY users_idx
ddl destroy | w:ft | DROP FOREIGN TABLE ft
ddl | w:users | COMMENT ON TABLE users IS 'people'
ddl | w:users | COMMENT ON COLUMN users.email IS 'address'
ddl | - | COMMENT ON FUNCTION f(int) IS 'x'

# --- views (a view is a write path to the tables it reads: they count as written), sequences, indexes
ddl | w:kid w:people | ALTER TABLE kid INHERIT people
ddl destroy | w:kid w:people | ALTER TABLE kid NO INHERIT people
ddl | w:v w:users | CREATE VIEW v AS SELECT * FROM users
ddl | w:v w:users | CREATE OR REPLACE VIEW v WITH (security_barrier) AS SELECT id FROM users WITH CHECK OPTION
ddl | w:v w:users | CREATE RECURSIVE VIEW v (n) AS SELECT 1 FROM users
ddl | w:v | ALTER VIEW v RENAME TO w
ddl | w:v | ALTER VIEW v ALTER COLUMN a SET DEFAULT 1
ddl | w:mv | ALTER MATERIALIZED VIEW mv SET SCHEMA archive
write | w:mv | REFRESH MATERIALIZED VIEW mv
write | w:mv | REFRESH MATERIALIZED VIEW CONCURRENTLY mv WITH DATA
ddl | w:s | CREATE SEQUENCE s START 10 INCREMENT 2
ddl | w:s | ALTER SEQUENCE s RESTART WITH 1
ddl | w:s | ALTER SEQUENCE s OWNED BY users.id
ddl | w:users | CREATE INDEX users_email ON users (email)
ddl | w:users | CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON users USING btree (lower(email)) INCLUDE (id) WHERE active
ddl | w:users | CREATE INDEX ON ONLY users (a)
ddl | - | ALTER INDEX i RENAME TO j
ddl | - | ALTER INDEX i SET TABLESPACE t
ddl | - | ALTER INDEX i ATTACH PARTITION j
admin | w:users | REINDEX TABLE users
admin | w:users_idx | REINDEX INDEX CONCURRENTLY users_idx
admin | - | REINDEX DATABASE appdb
admin | w:users | CLUSTER users USING users_pkey
admin | - | CLUSTER
admin | w:users | VACUUM users
admin | w:users w:orders | VACUUM (FULL, ANALYZE) users, orders
admin | - | VACUUM
admin | w:users | ANALYZE users (email)
ddl | r:users | CREATE STATISTICS s (dependencies) ON a, b FROM users
ddl | - | ALTER STATISTICS s SET STATISTICS 10
ddl destroy | - | DROP STATISTICS s

# --- schemas, types, domains, and other objects
ddl | - | CREATE SCHEMA app
ddl | w:app.t w:app.v w:app.t | CREATE SCHEMA app CREATE TABLE t (a int) CREATE VIEW v AS SELECT * FROM t
ddl | - | CREATE SCHEMA IF NOT EXISTS app AUTHORIZATION bob
ddl | w:app.* | ALTER SCHEMA app RENAME TO app2
ddl privilege | - | ALTER SCHEMA app OWNER TO bob
ddl destroy | w:* | DROP SCHEMA app CASCADE
ddl | - | CREATE TYPE mood AS ENUM ('sad', 'ok')
ddl | - | CREATE TYPE pair AS (a int, b text)
ddl | - | CREATE TYPE r AS RANGE (subtype = int4)
ddl | - | CREATE TYPE t (INPUT = t_in, OUTPUT = t_out)
ddl | - | CREATE TYPE shell_type
ddl | - | ALTER TYPE mood ADD VALUE 'happy' AFTER 'ok'
ddl | - | ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'
ddl | - | ALTER TYPE pair ADD ATTRIBUTE c int
ddl destroy | - | ALTER TYPE pair DROP ATTRIBUTE b
ddl | - | ALTER TYPE t SET (STORAGE = plain)
ddl destroy | w:* | DROP TYPE mood CASCADE
ddl write destroy | - | CREATE OPERATOR ### (rightarg = oid, function = lo_unlink)
ddl dynamic | - | CREATE AGGREGATE a(text) (sfunc = pg_catalog.ts_stat, stype = int4)
ddl admin | - | CREATE CAST (text AS int) WITH FUNCTION pg_read_file(text)
write destroy | w:t | SELECT ts_rewrite('a'::tsquery, 'DELETE FROM t RETURNING 1, 2')
ddl | - | CREATE DOMAIN posint AS int CHECK (VALUE > 0)
ddl | - | ALTER DOMAIN posint SET DEFAULT 1
ddl | - | ALTER DOMAIN posint ADD CONSTRAINT c CHECK (VALUE < 100)
ddl destroy | - | ALTER DOMAIN posint DROP CONSTRAINT c
ddl destroy | - | DROP DOMAIN posint
ddl | - | CREATE COLLATION c (locale = 'C')
ddl | - | ALTER COLLATION c REFRESH VERSION
ddl | - | CREATE CONVERSION c FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8
ddl | - | CREATE CAST (text AS mytype) WITH FUNCTION f(text)
ddl destroy | - | DROP CAST (text AS mytype)
ddl | - | CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq)
ddl | - | ALTER OPERATOR === (int, int) SET (RESTRICT = eqsel)
ddl destroy | - | DROP OPERATOR === (int, int)
ddl | - | CREATE OPERATOR CLASS c FOR TYPE int USING btree AS OPERATOR 1 <
ddl | - | CREATE OPERATOR FAMILY f USING btree
ddl | - | ALTER OPERATOR FAMILY f USING btree ADD OPERATOR 1 < (int, int)
ddl | - | CREATE AGGREGATE a (int) (SFUNC = int4pl, STYPE = int)
ddl destroy | - | DROP AGGREGATE a (int)
ddl | - | CREATE TEXT SEARCH CONFIGURATION c (COPY = english)
ddl | - | ALTER TEXT SEARCH CONFIGURATION c ALTER MAPPING FOR word WITH simple
ddl | - | CREATE TEXT SEARCH DICTIONARY d (TEMPLATE = simple)
ddl | - | ALTER TEXT SEARCH DICTIONARY d (StopWords = english)
ddl admin | - | CREATE ACCESS METHOD am TYPE TABLE HANDLER heap_tableam_handler
ddl | - | CREATE TRANSFORM FOR int LANGUAGE plpython3u (FROM SQL WITH FUNCTION f(internal), TO SQL WITH FUNCTION g(internal))
ddl destroy | - | DROP TRANSFORM FOR int LANGUAGE plpython3u
ddl | - | ALTER FUNCTION f(int) RENAME TO g
ddl | - | ALTER FUNCTION f(int) SET SCHEMA app
ddl | - | ALTER FUNCTION f(int) DEPENDS ON EXTENSION e
ddl | - | ALTER TABLE users RENAME COLUMN x TO y
ddl | w:users | ALTER TRIGGER t ON users RENAME TO u
ddl | w:users_idx | ALTER INDEX users_idx ALTER COLUMN 1 SET STATISTICS 100

# --- foreign data
ddl admin | - | CREATE FOREIGN DATA WRAPPER w
ddl | - | ALTER FOREIGN DATA WRAPPER w OPTIONS (ADD a '1')
ddl destroy | - | DROP FOREIGN DATA WRAPPER w
ddl | - | CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'h')
ddl | - | ALTER SERVER s OPTIONS (SET host 'x')
ddl destroy | - | DROP SERVER s CASCADE
ddl privilege | - | CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'u', password 'p')
ddl privilege | - | ALTER USER MAPPING FOR bob SERVER s OPTIONS (SET password 'q')
destroy privilege | - | DROP USER MAPPING FOR bob SERVER s
ddl | w:ft | CREATE FOREIGN TABLE ft (a int) SERVER s
ddl | w:ft | ALTER FOREIGN TABLE ft ADD COLUMN b int
ddl | - | IMPORT FOREIGN SCHEMA remote FROM SERVER s INTO local

# --- publication, subscription, replication
ddl admin | r:users | CREATE PUBLICATION p FOR TABLE users
ddl admin | - | CREATE PUBLICATION p FOR ALL TABLES
ddl admin | r:orders | ALTER PUBLICATION p ADD TABLE orders
ddl destroy | - | DROP PUBLICATION p
ddl admin | - | CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p
ddl admin | - | ALTER SUBSCRIPTION s DISABLE
destroy admin | - | DROP SUBSCRIPTION s

# --- databases, tablespaces, system
ddl admin | - | CREATE DATABASE app2 TEMPLATE template0
ddl admin | - | ALTER DATABASE app2 RENAME TO app3
ddl admin | - | ALTER DATABASE app2 WITH CONNECTION LIMIT 5
ddl admin | - | ALTER DATABASE app2 SET TABLESPACE fast
admin | - | ALTER DATABASE app2 SET work_mem = '64MB'
admin | - | ALTER DATABASE app2 REFRESH COLLATION VERSION
admin | - | ALTER DATABASE app2 RESET ALL
ddl privilege | - | ALTER DATABASE app2 OWNER TO bob
destroy admin | - | DROP DATABASE app2
destroy admin | - | DROP DATABASE IF EXISTS app2 WITH (FORCE)
ddl admin | - | CREATE TABLESPACE t LOCATION '/data/t'
admin | - | ALTER TABLESPACE t SET (random_page_cost = 1)
destroy admin | - | DROP TABLESPACE t
admin | - | ALTER SYSTEM SET max_connections = 10
admin | - | ALTER SYSTEM RESET ALL
admin | - | CHECKPOINT
admin code | - | LOAD 'auto_explain'

# --- roles and privileges
privilege | - | CREATE ROLE bob LOGIN PASSWORD 'x'
privilege | - | CREATE USER alice WITH SUPERUSER
privilege | - | CREATE GROUP g
privilege | - | ALTER ROLE bob SUPERUSER
privilege | - | ALTER USER bob VALID UNTIL 'infinity'
privilege | - | ALTER ROLE bob SET search_path = evil
privilege | - | ALTER ROLE ALL IN DATABASE app SET work_mem = '1GB'
privilege ddl | - | ALTER ROLE bob RENAME TO carol
destroy privilege | - | DROP ROLE bob
destroy privilege | - | DROP USER IF EXISTS bob, carol
destroy privilege | w:* | DROP OWNED BY CURRENT_USER
destroy privilege | - | DROP OWNED BY bob CASCADE
privilege | w:* | REASSIGN OWNED BY bob TO postgres
privilege | w:users | GRANT SELECT, UPDATE (email) ON users TO bob
privilege | w:users | GRANT ALL PRIVILEGES ON TABLE users TO PUBLIC WITH GRANT OPTION
privilege | w:public.* | GRANT ALL ON ALL TABLES IN SCHEMA public TO bob
privilege | - | GRANT USAGE ON SCHEMA app TO bob
privilege | - | GRANT EXECUTE ON FUNCTION f(int) TO bob
privilege | - | GRANT admin TO bob
privilege | - | GRANT pg_read_server_files TO CURRENT_USER
privilege | w:users | REVOKE ALL ON users FROM bob CASCADE
privilege | - | REVOKE admin FROM bob
privilege | - | ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO bob
ddl privilege | w:users | CREATE POLICY p ON users USING (true)
ddl privilege | w:users | CREATE POLICY p ON users AS RESTRICTIVE FOR DELETE TO bob USING (owner = current_user)
ddl privilege | w:users | ALTER POLICY p ON users USING (false)
ddl destroy privilege | w:users | DROP POLICY p ON users
ddl privilege | - | ALTER FUNCTION f() OWNER TO bob
ddl privilege | - | SECURITY LABEL ON TABLE users IS 'secret'
session privilege | - | SET ROLE admin
session privilege | - | SET SESSION AUTHORIZATION postgres
session privilege | - | RESET ROLE
session privilege | - | SET LOCAL ROLE NONE
session privilege | - | SET "Role" TO admin
session privilege | - | SET LOCAL "ROLE" = admin
session privilege | - | SET "Session_Authorization" TO postgres
ddl code privilege | - | ALTER FUNCTION f() SET "Role" = admin
privilege | - | ALTER ROLE CURRENT_USER SET "ROLE" = admin
read admin | - | SELECT pg_advisory_lock(42)
read admin | - | SELECT pg_catalog.pg_try_advisory_xact_lock_shared(4, 2)
read admin | - | SELECT pg_stat_reset()
read admin | - | SELECT pg_stat_reset_single_table_counters('t'::regclass)
read admin | r:* | SELECT * FROM pg_logical_slot_get_changes('s', NULL, NULL)
read admin | r:* | SELECT data FROM pg_catalog.pg_logical_slot_peek_binary_changes('s', NULL, NULL)
read admin | - | SELECT pg_replication_slot_advance('s', '0/0')
read admin | - | SELECT pg_logical_emit_message(true, 'p', 'x')
ddl admin | r:* | CREATE OPERATOR ### (leftarg = name, rightarg = pg_lsn, function = pg_logical_slot_get_changes)
read admin | - | SELECT ('/etc/passwd'::text).pg_read_file
session admin | - | PREPARE TRANSACTION 'agent-1'
session admin | - | COMMIT PREPARED 'app-42'
session admin | - | ROLLBACK PREPARED 'app-42'
read admin | - | SELECT (42::bigint).pg_advisory_lock
read write destroy | - | SELECT (12345::oid).lo_unlink
read write | w:invoice_no | SELECT ('invoice_no'::regclass).nextval
read | r:vault | SELECT ('SELECT to_tsvector(api_token) FROM vault'::text).ts_stat
read admin | - | SELECT (((42::bigint)).pg_advisory_lock)
read privilege | - | SELECT set_config('role', 'admin', false)
read session | - | SELECT set_config('statement_timeout', '1', false)
read privilege | - | SELECT set_config(current_setting('x'), 'admin', false)
read privilege | r:pg_settings | SELECT set_config(name, 'admin', false) FROM pg_settings WHERE name = 'role'
read privilege | r:t | SELECT set_config(name, 'admin', false) FROM t WHERE name = 'search_path'
read | r:pg_settings | SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'

# --- functions, procedures, DO, triggers, rules, extensions
ddl code | - | CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b'
ddl code destroy | w:users | CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'DELETE FROM users'
ddl code destroy | w:users | CREATE OR REPLACE FUNCTION f() RETURNS void AS $$ TRUNCATE users $$ LANGUAGE sql
ddl code write | w:users | CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC UPDATE users SET a = 1 WHERE id = 2; SELECT 1; END
ddl code read | - | CREATE FUNCTION f() RETURNS int RETURN 1
ddl code read | r:t | CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN (SELECT count(*) FROM t)
ddl code privilege | - | CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS 'SELECT 1'
ddl code destroy | w:v | CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE v; END $$
ddl code destroy | w:v | CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DROP TABLE v'; END $$
ddl code dynamic | - | CREATE FUNCTION f(t text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DROP TABLE ' || quote_ident(t); END $$
ddl code write | w:counts r:users | CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO counts SELECT count(*) FROM users; RETURN NEW; END $$
ddl code read | r:t | CREATE FUNCTION f(OUT n int) LANGUAGE plpgsql AS $$ BEGIN SELECT count(*) INTO n FROM t; END $$
ddl code read | r:t | CREATE FUNCTION f() RETURNS SETOF int LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY SELECT id FROM t; RETURN NEXT 1; END $$
ddl code read | r:t | CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ DECLARE c CURSOR FOR SELECT id FROM t; r record; BEGIN FOR r IN c LOOP END LOOP; RETURN 1; END $$
ddl code write | w:t | CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN <<outer>> LOOP UPDATE t SET a = a + 1 WHERE id = 1; EXIT outer WHEN true; END LOOP; END $$
ddl code write | w:t | CREATE FUNCTION f(x int) RETURNS void LANGUAGE plpgsql AS $$ BEGIN CASE x WHEN 1 THEN INSERT INTO t VALUES (1); ELSE NULL; END CASE; END $$
ddl code read | r:t | CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE '%', (SELECT count(*) FROM t); END $$
ddl code read | r:t | CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN ASSERT (SELECT count(*) FROM t) > 0; END $$
ddl code read | r:t | CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ DECLARE x int; BEGIN FOREACH x IN ARRAY ARRAY(SELECT id FROM t) LOOP END LOOP; END $$
ddl code write | w:t | CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN WHILE (SELECT true) LOOP DELETE FROM t WHERE id = 1; END LOOP; END $$
ddl code | - | CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ DECLARE n int; BEGIN GET DIAGNOSTICS n = ROW_COUNT; RETURN n; END $$
ddl code destroy | w:log | CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM 1; EXCEPTION WHEN division_by_zero THEN DELETE FROM log; END $$
ddl code read | r:t | CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ DECLARE c refcursor; r record; BEGIN OPEN c FOR SELECT * FROM t; FOR r IN SELECT * FROM t LOOP END LOOP; END $$
# a FETCH, MOVE or CLOSE in code reaches the portal a variable names at run time (one the client bound, too)
ddl code read dynamic | r:t | CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ DECLARE c refcursor; BEGIN OPEN c FOR SELECT * FROM t; CLOSE c; END $$
code dynamic | - | DO $$ DECLARE c refcursor := 'p'; r record; BEGIN FETCH c INTO r; END $$
code dynamic | - | DO $$ DECLARE c CURSOR FOR SELECT 1; BEGIN MOVE c; END $$
ddl code dynamic | - | CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'FETCH ALL FROM p'
ddl code opaque | - | CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS 'import os; return 1'
ddl code opaque | - | CREATE FUNCTION f() RETURNS int LANGUAGE plperlu AS 'system("id")'
ddl code opaque | - | CREATE FUNCTION f(int) RETURNS int LANGUAGE c AS 'mylib', 'f'
ddl code opaque | - | CREATE FUNCTION f(int) RETURNS int LANGUAGE internal AS 'int4inc'
ddl code write | w:log | CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN INSERT INTO log VALUES (1); COMMIT; END $$
ddl code write | w:log | CREATE PROCEDURE p(a int) LANGUAGE sql AS $$ INSERT INTO log VALUES (a) $$
ddl code destroy | w:users | CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC DELETE FROM users; END
ddl code | - | ALTER PROCEDURE p() SET work_mem = '1MB'
ddl destroy | - | DROP FUNCTION f(int)
ddl destroy | - | DROP PROCEDURE IF EXISTS p()
ddl destroy | - | DROP ROUTINE r
code | - | CALL p()
code | - | CALL app.p(1, 'x')
code destroy | w:v | DO $$ BEGIN EXECUTE 'DROP TABLE v'; END $$
code destroy | w:v | DO $$ BEGIN DROP TABLE v; END $$
code destroy | w:users | DO LANGUAGE plpgsql $$ BEGIN TRUNCATE users; END $$
code dynamic | - | DO $$ DECLARE t text := 'v'; BEGIN EXECUTE format('DROP TABLE %I', t); END $$
code dynamic | - | DO $$ DECLARE q text := 'DROP TABLE v'; BEGIN EXECUTE q; END $$
code read | r:t | DO $$ DECLARE n int; BEGIN EXECUTE 'SELECT count(*) FROM t' INTO n; END $$
code destroy | w:users | DO $$ BEGIN EXECUTE E'DELETE FROM users'; END $$
code destroy privilege | - | DO $$ BEGIN EXECUTE 'DROP OWNED BY ' || 'CURRENT_USER'; END $$
code opaque | - | DO LANGUAGE plpython3u $$ import os $$
ddl code | w:users | CREATE TRIGGER t AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION f()
ddl code | w:users | CREATE OR REPLACE TRIGGER t BEFORE UPDATE OF email ON users FOR EACH ROW WHEN (OLD.email IS DISTINCT FROM NEW.email) EXECUTE PROCEDURE f('x')
ddl code | w:users r:orgs | CREATE CONSTRAINT TRIGGER t AFTER DELETE ON users FROM orgs DEFERRABLE FOR EACH ROW EXECUTE FUNCTION f()
ddl destroy | w:users | DROP TRIGGER t ON users
ddl code | - | CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()
ddl code | - | ALTER EVENT TRIGGER e DISABLE
ddl destroy | - | DROP EVENT TRIGGER e
ddl code destroy | w:t w:users | CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM users
ddl code write | w:t w:log | CREATE OR REPLACE RULE r AS ON UPDATE TO t DO ALSO (INSERT INTO log VALUES (1); UPDATE log SET a = 1 WHERE id = 2)
ddl code | w:t | CREATE RULE r AS ON SELECT TO t DO INSTEAD NOTHING
ddl destroy | w:t | DROP RULE r ON t
ddl code admin | - | CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA app
ddl code admin | - | ALTER EXTENSION pgcrypto UPDATE TO '1.3'
ddl | - | ALTER EXTENSION pgcrypto ADD FUNCTION f(int)
ddl destroy | - | DROP EXTENSION pgcrypto CASCADE
ddl code admin | - | CREATE LANGUAGE plsample HANDLER plsample_call_handler
ddl destroy | - | DROP LANGUAGE plsample
read destroy write | w:users | SELECT query_to_xml('DELETE FROM users RETURNING 1', true, false, '')
read dynamic | - | SELECT query_to_xml($1, true, false, '')
read dynamic | - | SELECT * FROM dblink('dbname=x', 'SELECT 1') AS t(a int)
read | r:t | SELECT * FROM ts_stat('SELECT v FROM t')
read | r:vault | SELECT table_to_xml('vault', true, false, '')
read | r:public.* | SELECT schema_to_xml('public', true, false, '')
read | r:* | SELECT database_to_xml_and_xmlschema(true, false, '')
read | r:pg_stats r:* | SELECT most_common_vals FROM pg_stats
read write | w:invoice_no | SELECT nextval('invoice_no')
read write | w:public.invoice_no | SELECT setval('public.invoice_no', 42)
read session | - | SELECT pg_notify('jobs', 'run')
read write destroy | w:users | SELECT query_to_xml(query => 'DELETE FROM users RETURNING 1', tableforest => true, nulls => false, targetns => '')
read dynamic | - | SELECT cron.schedule('nightly', '0 3 * * *', 'DELETE FROM users')
read dynamic | - | SELECT pg_background_launch(current_setting('x'))
read write | w:log | SELECT pg_background_launch('INSERT INTO log VALUES (1)')
read admin | - | SELECT pg_read_file('/etc/passwd')
read admin | - | SELECT lo_import('/etc/shadow')
read write destroy | - | SELECT lo_unlink(16403)
read write | - | SELECT lo_from_bytea(0, '\x00')
read admin | r:pg_stat_activity | SELECT pg_terminate_backend(pid) FROM pg_stat_activity
read admin | - | SELECT pg_catalog.pg_reload_conf()

# --- session, transactions, cursors, prepared statements, notifications
session | - | SET search_path TO app, public
session | - | SET LOCAL statement_timeout = '5s'
session | - | SET TIME ZONE 'UTC'
session | - | SET TRANSACTION ISOLATION LEVEL SERIALIZABLE
session | - | RESET ALL
session | - | RESET work_mem
session | - | SHOW work_mem
session | - | SHOW ALL
session | - | BEGIN
session | - | START TRANSACTION READ ONLY
session | - | COMMIT
session | - | ROLLBACK
session | - | SAVEPOINT s
session | - | RELEASE SAVEPOINT s
session | - | ROLLBACK TO SAVEPOINT s
session | - | PREPARE TRANSACTION 'x'
session | - | COMMIT PREPARED 'x'
session | - | SET CONSTRAINTS ALL DEFERRED
session | - | DISCARD ALL
session read | r:users | PREPARE q (int) AS SELECT * FROM users WHERE id = $1
session write destroy | w:users | PREPARE d AS DELETE FROM users
session | - | EXECUTE q(1)
session | - | DEALLOCATE q
session | - | DEALLOCATE ALL
read | r:users | DECLARE c CURSOR WITH HOLD FOR SELECT * FROM users
read | - | FETCH 10 FROM c
read | - | MOVE NEXT IN c
session | - | CLOSE c
session | - | CLOSE ALL
session | - | LISTEN ch
session | - | NOTIFY ch, 'payload'
session | - | UNLISTEN *
read | r:users | EXPLAIN SELECT * FROM users
read write destroy | w:users | EXPLAIN ANALYZE DELETE FROM users
read write | w:users | EXPLAIN (ANALYZE, BUFFERS) UPDATE users SET a = 1 WHERE id = 1
read ddl write | w:t r:users | EXPLAIN ANALYZE CREATE TABLE t AS SELECT * FROM users
`;
