"""Rows per table of a mariadb-dump / mysqldump dump, counted from its INSERT statements."""

from __future__ import annotations

import pytest

from kompose.dumps import mariadb_rows

# MariaDB 10.11's mariadb-dump: one row per line
ROWS_PER_LINE = b"""-- MariaDB dump 10.19  Distrib 10.11.14-MariaDB, for debian-linux-gnu (x86_64)
--
-- Dumping data for table `wp_audit`
--

LOCK TABLES `wp_audit` WRITE;
/*!40000 ALTER TABLE `wp_audit` DISABLE KEYS */;
/*!40000 ALTER TABLE `wp_audit` ENABLE KEYS */;
UNLOCK TABLES;
--
-- Dumping data for table `wp_comments`
--

LOCK TABLES `wp_comments` WRITE;
INSERT INTO `wp_comments` VALUES
(1,1,'First! (a),(b)'),
(2,2,'it\\'s \\\\'),
(3,2,');\\n(');
INSERT INTO `wp_comments` VALUES
(4,2,'x');
UNLOCK TABLES;
DELIMITER ;;
/*!50003 CREATE*/ /*!50003 TRIGGER t AFTER INSERT ON wp_comments FOR EACH ROW
INSERT INTO `wp_comments` VALUES
(9,9,'no');;
DELIMITER ;
--
-- Dumping data for table `we``ird`
--
INSERT INTO `we``ird` (`id`, `v`) VALUES
(1,0x28292C28);
-- Dump completed on 2026-12-01 16:21:43
"""

# mysqldump (and older mariadb-dump): every row on the INSERT's line
ONE_LINE = (b"-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n"
            b"-- Dumping data for table `t`\n"
            b"INSERT INTO `t` VALUES (1,'a),(b'),(2,'it\\'s'),(3,NULL);\n"
            b"INSERT INTO `t` VALUES (4,'\\\\'),(5,'(');\n"
            b"-- Dumping data for table `u`\n"
            b"INSERT INTO `u` (`a`, `b`) VALUES (1,2);\n"
            b"-- Dump completed\n")


def test_rows_per_line_are_counted_strings_and_triggers_aside():
    assert mariadb_rows.count_bytes(ROWS_PER_LINE) == {"wp_audit": 0, "wp_comments": 4, "we`ird": 1}


def test_rows_on_one_line_are_counted_outside_strings():
    assert mariadb_rows.count_bytes(ONE_LINE) == {"t": 5, "u": 1}


@pytest.mark.parametrize("data", [ROWS_PER_LINE, ONE_LINE])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_any_chunking_gives_the_same_counts(data, size):
    counter = mariadb_rows.RowCounter()
    for at in range(0, len(data), size):
        counter.feed(data[at:at + size])
    counter.end()
    assert counter.rows == mariadb_rows.count_bytes(data)


def test_a_file_is_counted_compressed_or_not(tmp_path):
    import shutil

    plain = tmp_path / "app_20260101_000000.sql"
    plain.write_bytes(ROWS_PER_LINE)
    assert mariadb_rows.scan_file(plain)["wp_comments"] == 4
    if shutil.which("zstd"):
        import subprocess

        big = tmp_path / "app_20260102_000000.sql"  # larger than what is_dump_file reads: zstd is cut short
        big.write_bytes(ROWS_PER_LINE.replace(b"-- Dump completed", b"-- " + b"x" * 200000 + b"\n-- Dump completed"))
        subprocess.run(["zstd", "-q", str(plain), str(big)], check=True)
        assert mariadb_rows.scan_file(plain.with_name(plain.name + ".zst"), "zstd")["wp_comments"] == 4
        assert mariadb_rows.is_dump_file(big.with_name(big.name + ".zst"), "zstd")
    assert not mariadb_rows.is_dump_file(plain.with_name("missing.sql"))


@pytest.mark.parametrize("size", [1, 10, 63, 64, 65, 4096])
def test_an_export_stream_is_counted_as_it_is_written(tmp_path, size):
    """codecs.Sink (where an exec's stdout goes) counts a mariadb-dump stream's INSERT rows, and a
    pg_dump stream's COPY rows as before, whatever the size of the writes."""
    from kompose.dumps import codecs

    sink = codecs.Sink(tmp_path / "out.sql")
    for at in range(0, len(ROWS_PER_LINE), size):
        sink.write(ROWS_PER_LINE[at:at + size])
    sink.close()
    assert (sink.rows_kind, sink.rows) == ("insert", mariadb_rows.count_bytes(ROWS_PER_LINE))
    assert (tmp_path / "out.sql").read_bytes() == ROWS_PER_LINE
    pg = b"--\n-- PostgreSQL database dump\n--\nCOPY public.t (a) FROM stdin;\n1\n2\n\\.\n"
    sink = codecs.Sink(tmp_path / "pg.sql")
    for at in range(0, len(pg), size):
        sink.write(pg[at:at + size])
    sink.close()
    assert sink.rows_kind == "copy" and sink.rows == {"public.t": 2}
