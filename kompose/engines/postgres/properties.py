"""What makes a database that database, carried onto its restored copy: owner, connection limit,
the whole ACL (revokes included), comment, ALTER DATABASE … SET and ALTER ROLE … IN DATABASE … SET
(_COPY_PROPERTIES); and the rights kompose's admin connection needs for that, checked before
anything changes (CHECK_RIGHTS). psql scripts, values as psql variables; nothing runs here."""

from __future__ import annotations


# Before anything changes: the rights the import (or rollback) needs, checked as the admin
# role that will use them. A superuser has them all; any other role gets one line naming
# what to grant, and nothing has been touched.
CHECK_RIGHTS = r"""
SELECT set_config('kompose.live', :'live', false) AS checking \gset
DO $rights$
DECLARE
  me pg_roles%ROWTYPE;
  live pg_database%ROWTYPE;
  missing text[] := '{}';
BEGIN
  SELECT * INTO me FROM pg_roles WHERE rolname = current_user;
  IF me.rolsuper THEN
    RETURN;
  END IF;
  SELECT * INTO live FROM pg_database WHERE datname = current_setting('kompose.live');
  IF NOT me.rolcreatedb THEN
    missing := missing || format('ALTER ROLE %I CREATEDB', me.rolname);
  END IF;
  IF live.oid IS NOT NULL AND NOT pg_has_role(me.oid, live.datdba, 'USAGE') THEN
    missing := missing || format('GRANT %I TO %I', pg_get_userbyid(live.datdba), me.rolname);
  END IF;
  IF NOT pg_has_role(me.oid, 'pg_signal_backend', 'USAGE') THEN
    missing := missing || format('GRANT pg_signal_backend TO %I (to end the app''s sessions at the swap)', me.rolname);
  END IF;
  IF live.oid IS NOT NULL AND EXISTS (
      SELECT 1 FROM pg_db_role_setting s
        LEFT JOIN pg_roles r ON r.oid = s.setrole
        CROSS JOIN LATERAL unnest(s.setconfig) AS cfg
        LEFT JOIN pg_settings p ON p.name = split_part(cfg, '=', 1)
       WHERE s.setdatabase = live.oid
         AND ((s.setrole <> 0 AND s.setrole <> me.oid AND (r.rolsuper OR NOT me.rolcreaterole))
              OR p.context = 'superuser' OR p.name IS NULL)) THEN
    missing := missing || format('superuser (ALTER ROLE %I SUPERUSER) to carry settings of %I only a superuser may set',
                                 me.rolname, live.datname);
  END IF;
  IF cardinality(missing) > 0 THEN
    RAISE EXCEPTION 'kompose''s admin role % lacks rights it needs; nothing was changed. Grant: %; or set DB_ADMIN_USER and DB_ADMIN_PASSWORD to a superuser',
      me.rolname, array_to_string(missing, '; ');
  END IF;
END
$rights$;
"""

# The database object's own properties, which a rename swap would leave on the old database:
# owner, connection limit, the whole ACL (revokes included: a database closed to PUBLIC stays
# closed), comment, ALTER DATABASE ... SET and ALTER ROLE ... IN DATABASE ... SET. Copied
# onto the restored one before it goes live. Every statement must succeed (CHECK_RIGHTS ran
# first): a property kompose cannot carry stops the import before the swap.
def _copy_properties(source: str = "live", target: str = "tmp") -> str:
    """The script copying the properties of database :source onto database :target (psql variables)."""
    return (
        f"SELECT set_config('kompose.live', :'{source}', false), set_config('kompose.tmp', :'{target}', false) \\gset\n"
        + _COPY_PROPERTIES_BODY
    )


_COPY_PROPERTIES_BODY = r"""DO $copy$
DECLARE
  live_name text := current_setting('kompose.live');
  tmp_name text := current_setting('kompose.tmp');
  live pg_database%ROWTYPE;
  tmp pg_database%ROWTYPE;
  owner_name text;
  statements text[] := '{}';
  item record;
  statement text;
BEGIN
  SELECT * INTO live FROM pg_database WHERE datname = live_name;
  SELECT * INTO tmp FROM pg_database WHERE datname = tmp_name;
  owner_name := pg_get_userbyid(live.datdba);
  -- the owner first: the ACL below names it as the grantor, as on the live database
  IF live.datdba <> tmp.datdba THEN
    statements := statements || format('ALTER DATABASE %I OWNER TO %I', tmp_name, owner_name);
  END IF;
  IF live.datconnlimit <> tmp.datconnlimit THEN
    statements := statements || format('ALTER DATABASE %I CONNECTION LIMIT %s', tmp_name, live.datconnlimit);
  END IF;
  -- NULL is the default ACL (a fresh database has it); any other is rebuilt exactly: all
  -- rights off, the owner's own included, then each entry granted in its order
  IF live.datacl IS NOT NULL THEN
    statements := statements || format('REVOKE ALL ON DATABASE %I FROM PUBLIC', tmp_name)
                             || format('REVOKE ALL ON DATABASE %I FROM %I', tmp_name, owner_name);
    FOR item IN
      SELECT a.grantee, a.privilege_type, a.is_grantable
        FROM unnest(live.datacl) WITH ORDINALITY AS entry(acl, n)
        CROSS JOIN LATERAL aclexplode(ARRAY[entry.acl]) AS a
       ORDER BY entry.n
    LOOP
      statements := statements || format('GRANT %s ON DATABASE %I TO %s%s', item.privilege_type, tmp_name,
        CASE WHEN item.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(item.grantee)) END,
        CASE WHEN item.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
  END IF;
  IF shobj_description(live.oid, 'pg_database') IS NOT NULL THEN
    statements := statements || format('COMMENT ON DATABASE %I IS %L', tmp_name, shobj_description(live.oid, 'pg_database'));
  END IF;
  FOR item IN
    SELECT s.setrole, r.rolname, split_part(cfg, '=', 1) AS name, substr(cfg, strpos(cfg, '=') + 1) AS value
      FROM pg_db_role_setting s CROSS JOIN LATERAL unnest(s.setconfig) WITH ORDINALITY AS c(cfg, n)
      LEFT JOIN pg_roles r ON r.oid = s.setrole
     WHERE s.setdatabase = live.oid
     ORDER BY s.setrole, c.n
  LOOP
    -- list settings (search_path, ...) are stored by the server as an SQL list with each
    -- element already quoted: reuse that text; every other value is one literal
    item.value := CASE WHEN item.name IN ('search_path', 'temp_tablespaces', 'local_preload_libraries',
                                          'session_preload_libraries')
                       THEN item.value ELSE quote_literal(item.value) END;
    statements := statements || CASE WHEN item.setrole = 0
      THEN format('ALTER DATABASE %I SET %I = %s', tmp_name, item.name, item.value)
      ELSE format('ALTER ROLE %I IN DATABASE %I SET %I = %s', item.rolname, tmp_name, item.name, item.value) END;
  END LOOP;
  FOREACH statement IN ARRAY statements LOOP
    BEGIN
      EXECUTE statement;
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE EXCEPTION 'not allowed to carry % over to the restored database (%); nothing was swapped: run as a superuser (DB_ADMIN_USER)',
        statement, SQLERRM;
    END;
  END LOOP;
END
$copy$;
"""
_COPY_PROPERTIES = _copy_properties()
