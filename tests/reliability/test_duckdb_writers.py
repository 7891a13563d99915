"""Two processes writing one DuckDB file: they take turns (the store retries the file lock with backoff), a
writer that waits too long fails with a message saying why, a writer killed mid-transaction leaves nothing
half-written, and `loraforge doctor` passes afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from reliability.helpers import REPO, cli, cli_env, last_json
from tasks import store
from tasks.doctor import check_home

WRITER = r"""
import json, sys, time
import pyarrow as pa
from tasks import store

db, name, n_txn, rows, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
while time.time() < start_at:
    time.sleep(0.005)
t0 = time.perf_counter()
for i in range(n_txn):
    run_id, hashes = f"{name}-{i}", [f"{name}-{i}-{j}" for j in range(rows)]
    store.upsert_teacher_calls(db, pa.Table.from_pylist([
        {"request_hash": h, "teacher": "t", "model": "m", "request_json": "{}", "status": "ok", "raw_response": "{}",
         "attempts": 1, "prompt_tokens": 1, "completion_tokens": 1, "cost_usd": 0.0, "error": None,
         "created_at": store.now()} for h in hashes]))
    store.record_validation(db, pa.Table.from_pylist([
        {"run_id": run_id, "request_hash": h, "idx": j, "topic": "t", "outcome": "accepted", "example_id": h,
         "reasons": []} for j, h in enumerate(hashes)]), pa.Table.from_pylist([
        {"example_id": h, "domain": "d", "prompt": h, "completion": "x", "description": h,
         "kind_json": '{"positives": ["x"], "negatives": ["y"]}', "topic": "t", "run_id": run_id, "teacher": "t",
         "request_hash": h, "seed": 0, "validator_version": "v", "split": "train", "created_at": store.now()}
        for h in hashes]), pa.table({}))
    print(f"committed {i}", flush=True)
print(json.dumps({"writer": name, "transactions": n_txn, "seconds": round(time.perf_counter() - t0, 2)}))
"""

HOLDER = r"""
import sys
from tasks import store
with store.connect(sys.argv[1]) as con:
    print("holding", flush=True)
    sys.stdin.readline()  # until the test says so
"""


def _py(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=env or {**os.environ,
                            "PYTHONPATH": str(REPO)}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _per_run(db, prefix: str, n: int) -> list[int]:
    return [store.table_count(db, "run_requests", "WHERE run_id = ?", [f"{prefix}-{i}"]) for i in range(n)]


def test_two_writer_processes_take_turns_and_every_transaction_lands_once(home):
    store.init_db(home.db)
    start_at = str(time.time() + 3)  # both start together, after their imports
    procs = [_py(WRITER, str(home.db), name, "12", "40", start_at) for name in ("a", "b")]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    figures = [json.loads(o[0].splitlines()[-1]) for o in outs]
    assert store.table_count(home.db, "teacher_calls") == 2 * 12 * 40
    assert store.table_count(home.db, "examples") == 2 * 12 * 40
    assert _per_run(home.db, "a", 12) == _per_run(home.db, "b", 12) == [40] * 12
    report = check_home(home)
    assert report["ok"], report
    print("RELIABILITY " + json.dumps({"scenario": "two writers", "writers": figures}))


def test_a_writer_that_cannot_get_the_lock_in_time_fails_with_a_message_and_doctor_says_why(home, tmp_path):
    store.init_db(home.db)
    holder = _py(HOLDER, str(home.db))
    assert holder.stdout.readline().strip() == "holding"
    env = {**os.environ, "PYTHONPATH": str(REPO), "LORAFORGE_DB_LOCK_TIMEOUT": "1"}
    writer = _py(WRITER, str(home.db), "late", "1", "5", "0", env=env)
    _, err = writer.communicate(timeout=120)
    cli_busy = cli_env(tmp_path, LORAFORGE_HOME=str(home.root), LORAFORGE_DB_LOCK_TIMEOUT="1")
    doctor = cli("doctor", "--json", env=cli_busy)
    reader = cli("runs", "ls", "--json", env=cli_busy)
    holder.communicate(input="go\n", timeout=60)
    assert reader.returncode == 1 and "Traceback" not in reader.stderr
    assert "locked by another loraforge process; waited 1s" in " ".join(reader.stderr.split())
    assert writer.returncode == 1
    assert "StoreBusyError" in err and "is locked by another loraforge process; waited 1s" in err
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    assert "locked by another loraforge process" in last_json(doctor.stdout)["checks"][0]["detail"]
    assert store.table_count(home.db, "teacher_calls") == 0  # nothing half-written
    assert check_home(home)["ok"]


def test_a_writer_killed_mid_transaction_leaves_whole_transactions_only(home):
    store.init_db(home.db)
    writer = _py(WRITER, str(home.db), "k", "400", "200", "0")
    for _ in range(3):  # let a few transactions commit, then kill -9 at an arbitrary point of the next ones
        assert writer.stdout.readline().startswith("committed")
    time.sleep(0.137)
    writer.send_signal(signal.SIGKILL)
    writer.communicate(timeout=60)
    assert writer.returncode == -signal.SIGKILL
    per_run = _per_run(home.db, "k", 400)
    assert set(per_run) <= {0, 200} and per_run.count(200) >= 3  # each transaction is all or nothing
    committed = per_run.count(200)
    assert per_run == [200] * committed + [0] * (400 - committed)
    assert store.table_count(home.db, "examples") == 200 * committed
    report = check_home(home)
    assert report["ok"], report
    print("RELIABILITY " + json.dumps({"scenario": "writer killed mid-transaction", "committed": committed}))
