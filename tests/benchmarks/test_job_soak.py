"""The job start/cancel soak runs at a small size: every job ends cancelled, nothing is left behind."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.extended]


def test_a_few_start_cancel_cycles_leave_no_orphan_and_no_active_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("COCOSEG_TEST_JOBS", "1")  # run() sets both; monkeypatch puts them back after
    monkeypatch.setenv("COCOSEG_HOME", str(tmp_path))
    from benchmarks.job_soak import PAIR_EVERY, format_table, run

    results = run(cycles=PAIR_EVERY, home=tmp_path)
    assert results["jobs"] == PAIR_EVERY + 1  # the last cycle starts two: one waits for the slot
    assert results["orphans"] == [] and results["stuck"] == [], format_table(results)
    assert set(results["outcomes"]) <= {"cancelled", "refused"}, results["outcomes"]
    assert all("ended" in record for record in results["records"])
    assert "orphan processes: 0" in format_table(results)
