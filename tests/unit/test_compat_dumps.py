"""dumps/compat.py through the restore guard (dumps/plain_sql): the SET lines a server does not know,
--no-owner, and what a plain dump needs."""

from __future__ import annotations

import io

from kompose.dumps.compat import needs
from kompose.dumps.plain_guard import GuardedSource

HEADER = b"""--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SET lock_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET myapp.flag = 'x';
SET row_security = off;

"""
BODY = b"""CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;
CREATE TABLE public.t (
    x text
);
ALTER TABLE public.t OWNER TO bob;
CREATE FUNCTION public.f() RETURNS void
    LANGUAGE plpgsql
    AS $_$
BEGIN
ALTER TABLE public.t OWNER TO carol;
SET transaction_timeout = 0;
END
$_$;
ALTER FUNCTION public.f() OWNER TO "Dave Doe";
COPY public.t (x) FROM stdin;
ALTER TABLE public.t OWNER TO eve;
SET transaction_timeout = 0;
\\.
SET default_tablespace = '';
COMMENT ON TABLE public.t IS 'it''s
ALTER TABLE public.t OWNER TO frank;';
GRANT SELECT ON TABLE public.t TO grace, PUBLIC;
"""
KNOWN = frozenset({"statement_timeout", "lock_timeout", "client_encoding", "standard_conforming_strings",
                   "row_security", "default_tablespace"})


class _Source(io.BytesIO):
    name = "blog_20250101_030000.sql"

    def abort(self) -> None:
        pass


def filtered(data: bytes, known=KNOWN, no_owner=False, size=7):
    stream = GuardedSource(_Source(data), "blog_20250101_030000.sql", known_settings=known, no_owner=no_owner)
    out = bytearray()
    while chunk := stream.read(size):
        out += chunk
    stream.close()
    return bytes(out), stream.scanner.scan


def test_unknown_session_settings_of_the_header_are_skipped_and_named():
    out, scan = filtered(HEADER + BODY)
    assert scan.skipped_settings == ["transaction_timeout"]
    assert b"\nSET transaction_timeout = 0;\n" not in out[:len(HEADER)]
    assert b"SET myapp.flag = 'x';" in out  # a custom parameter: any server takes it
    # the body passes through byte for byte, the function's own SET and the COPY data's included
    assert out.endswith(BODY)


def test_no_owner_skips_top_level_owner_lines_only():
    out, scan = filtered(HEADER + BODY, no_owner=True)
    assert scan.owners_skipped == 2  # bob and "Dave Doe"
    assert b"OWNER TO bob" not in out and b'OWNER TO "Dave Doe"' not in out
    for kept in (b"OWNER TO carol", b"OWNER TO eve", b"OWNER TO frank"):  # a function body, COPY data, a string
        assert kept in out


def test_needs_names_roles_extensions_and_settings():
    found = needs(io.BytesIO(HEADER + BODY), chunk=5)
    assert found.owners == {"bob", "Dave Doe"}
    assert found.roles == {"bob", "Dave Doe", "grace"}
    assert found.extensions == {"pgcrypto"}
    assert "transaction_timeout" in found.settings and "default_tablespace" in found.settings


def test_without_the_server_s_parameters_no_set_is_left_out():
    out, scan = filtered(HEADER + BODY, known=None)
    assert scan.skipped_settings == [] and out == HEADER + BODY
