"""Hooks cannot hang or bloat kompose: stdin is /dev/null, background children get a bounded wait,
floods stream through in constant memory, and a hook never outlives a killed kompose."""

from tests.faults import scenarios
from tests.faults.conftest import assert_rows


def test_hook_reading_stdin_does_not_hang(export_lab, report):
    assert_rows(report(scenarios.hook_stdin(export_lab)))


def test_hook_background_process_holding_stdout(export_lab, report):
    assert_rows(report(scenarios.hook_background(export_lab)))


def test_hook_printing_100_mb_keeps_memory_flat(export_lab, tmp_path, report):
    assert_rows(report(scenarios.hook_flood(export_lab, tmp_path)))


def test_hook_does_not_outlive_a_killed_kompose(export_lab, report):
    assert_rows(report(scenarios.hook_orphan(export_lab)))
