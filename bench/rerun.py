"""How long `loraforge rerun RUN_ID --from train` takes with the tiny profile, and what it reuses.

    python bench/rerun.py          # from the repo root; prints one JSON line of figures last

Makes a fresh $LORAFORGE_HOME, runs `loraforge run --domain regex-python --profile tiny --json` once (the
parent), then times `loraforge rerun PARENT --from train --json` as a user would type it (a new process: its
ephemeral Prefect start is part of the figure). Writes bench/results/rerun.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import report

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict) -> tuple[dict, float]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1]), seconds


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help explains, runs nothing
    sys.path.insert(0, str(ROOT))
    from tasks import store

    tmp = Path(tempfile.mkdtemp(prefix="lf-bench-rerun-"))
    env = {**os.environ, "LORAFORGE_HOME": str(tmp / "home"), "PREFECT_HOME": str(tmp / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    parent, parent_s = cli("run", "--domain", "regex-python", "--profile", "tiny", "--json", env=env)
    db = tmp / "home" / "loraforge.duckdb"
    calls_before = store.table_count(db, "teacher_calls")
    child, child_s = cli("rerun", parent["run_id"], "--from", "train", "--json", env=env)
    figures = {
        "bench": "rerun_from_train", "profile": "tiny", "parent_run_seconds": round(parent_s, 1),
        "rerun_from_train_seconds": round(child_s, 1), "rerun_pipeline_seconds": child["seconds"],
        "new_teacher_calls": store.table_count(db, "teacher_calls") - calls_before,
        "same_dataset_id": child["dataset_id"] == parent["dataset_id"],
        "stages": {s["stage"]: s["status"] for s in child["stages"]}, "parent_run_id": child["parent_run_id"],
        "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
    }
    report("rerun", figures, indent=1)


if __name__ == "__main__":
    main()
