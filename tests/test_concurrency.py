"""Two runs of one domain at once: the second waits for the first (a per-domain file lock) and then completes, so
both exit 0 (docs/operations.md); a run that waits longer than its timeout says clearly why it gave up; the DuckDB
file stays consistent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from flows._common import DomainBusyError, domain_lock
from tasks import store

HOLDER = """
import pathlib, sys, time
from flows._common import domain_lock
from schemas.run import Home
with domain_lock(Home.from_env(sys.argv[1]), "regex-python", "holder-run"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    pathlib.Path(sys.argv[1], "holder-done").write_text("done")  # written while still holding the lock
"""


def _hold_lock(home, seconds: float) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(home.root), str(seconds)], stdout=subprocess.PIPE,
                         text=True, cwd=os.getcwd())
    assert p.stdout.readline().strip() == "held"
    return p


def test_second_run_of_a_domain_waits_for_the_first_then_proceeds(home, capsys):
    holder = _hold_lock(home, 2.0)
    try:
        with domain_lock(home, "regex-python", "second-run", timeout_s=60):
            assert (home.root / "holder-done").exists()  # we only got in once the holder had finished its work
        out = capsys.readouterr().out
        assert "run second-run: waiting for run holder-run" in out and "proceeding" in out
    finally:
        holder.wait(timeout=30)


def test_a_run_that_waits_too_long_fails_with_a_message_naming_the_holder(home):
    holder = _hold_lock(home, 20.0)
    try:
        with pytest.raises(DomainBusyError, match=r"domain 'regex-python' is busy: run holder-run \(pid \d+\)"), \
                domain_lock(home, "regex-python", "impatient", timeout_s=1):
            pass
        with domain_lock(home, "regex-logs", "other-domain", timeout_s=1):  # other domains are not blocked
            pass
    finally:
        holder.kill()
        holder.wait()
    with domain_lock(home, "regex-python", "after-a-kill", timeout_s=5):  # a killed holder leaves no stale lock
        pass


@pytest.mark.slow
def test_two_concurrent_tiny_runs_of_one_domain_leave_a_consistent_database(tmp_path, prefect_harness):
    env = {**os.environ, "LORAFORGE_HOME": str(tmp_path / "home"), "PREFECT_HOME": str(tmp_path / "prefect")}
    cmd = [sys.executable, "-m", "flows.cli", "run", "--domain", "regex-python", "--profile", "tiny", "--json"]
    # Output goes to files, not pipes: a run blocked on a full pipe that nobody reads yet (we wait on the other
    # one first) would hold the domain lock forever and deadlock the test.
    logs = [(tmp_path / f"run{i}.out", tmp_path / f"run{i}.err") for i in range(2)]
    procs = []
    for i, (out_path, err_path) in enumerate(logs):
        if i:
            time.sleep(1.0)
        with out_path.open("w") as out_f, err_path.open("w") as err_f:
            procs.append(subprocess.Popen(cmd, stdout=out_f, stderr=err_f, text=True, env=env))
    for p in procs:
        p.wait(timeout=1500)
    outs = [(o.read_text(), e.read_text()) for o, e in logs]
    # both exit 0, as the docs say: the second waits for the domain lock (default timeout 3600 s), then completes
    assert [p.returncode for p in procs] == [0, 0], [e[-3000:] for _, e in outs]
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    waited = ["to finish (one run per domain" in out + err for out, err in outs]  # domain_lock says it waits
    print(f"concurrency outcome: exit codes {[p.returncode for p in procs]}, waited for the lock {waited}, "
          f"seconds {[s['seconds']['total'] for s in summaries]}")
    assert [s["status"] for s in summaries] == ["completed", "completed"]
    assert sum(waited) == 1  # exactly one of them waited for the other, and said so
    assert len({s["run_id"] for s in summaries}) == 2

    db = tmp_path / "home" / "loraforge.duckdb"
    report = store.integrity_report(db)
    assert all(v == 0 for v in report.values()), report
    for s in summaries:  # counts add up, and every figure is a count of rows
        c = s["counts"]
        assert c["requested"] == 300 == c["accepted"] + c["quarantined"] + c["failed"]
        assert store.table_count(db, "run_requests", "WHERE run_id = ?", [s["run_id"]]) == 300
    assert store.table_count(db, "teacher_calls") == 300  # the second run reused the first one's answers
    assert len({s["dataset_id"] for s in summaries}) == 1
    runs = store.list_runs_with_parents(db)
    assert len(runs) == 2 and all(r["status"] == "completed" for r in runs)
    from schemas.run import Home
    from tasks.doctor import check_home

    doctor = check_home(Home.from_env(tmp_path / "home"))
    assert doctor["ok"], [c for c in doctor["checks"] if not c["ok"]]
