"""Soak: N consecutive pipeline runs of one domain in ONE process; does memory or the fd table grow?

    python bench/soak.py                      # 5 quick runs of regex-python (~1 min each on 2 cores)
    python bench/soak.py --profile tiny --runs 3

Each run is the real top flow ``distill_to_adapter`` under an ephemeral Prefect (as ``loraforge run`` uses it),
on one fresh ``$LORAFORGE_HOME``; later runs reuse the stored teacher responses and train a new candidate, as a
nightly schedule would. After each run: RSS of this process (after ``gc.collect()``), its open file descriptors,
threads and child processes (the ephemeral Prefect server is one). Goal: RSS grows < 10 % from the first run to
the last, and the fd count does not grow. Prints one JSON line last; writes ``bench/results/soak.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from _report import report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _process_figures() -> dict:
    import psutil

    me = psutil.Process()
    children = me.children(recursive=True)
    return {"rss_mb": round(me.memory_info().rss / 2**20, 1), "open_fds": me.num_fds(),
            "threads": me.num_threads(), "children": len(children),
            "children_rss_mb": round(sum(c.memory_info().rss for c in children) / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", default="regex-python")
    parser.add_argument("--profile", default="quick", choices=["tiny", "quick", "full"])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="loraforge-soak-"))
    os.environ["LORAFORGE_HOME"] = str(scratch / "home")
    os.environ.setdefault("PREFECT_HOME", str(scratch / "prefect"))
    from flows.cli import PREFECT_DEFAULTS

    for k, v in PREFECT_DEFAULTS.items():
        os.environ.setdefault(k, v)
    from flows.pipeline import distill_to_adapter
    from tasks.doctor import check_home

    rows = []
    for i in range(1, args.runs + 1):
        t0 = time.perf_counter()
        summary = distill_to_adapter(domain=args.domain, profile=args.profile)
        seconds = round(time.perf_counter() - t0, 1)
        gc.collect()
        rows.append({"run": i, "seconds": seconds, "status": summary["status"],
                     "adapter_status": summary["adapter"]["status"], **_process_figures()})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

    first, last = rows[0], rows[-1]
    doctor = check_home()
    result = {
        "bench": "soak", "domain": args.domain, "profile": args.profile, "runs": args.runs,
        "rss_mb": [r["rss_mb"] for r in rows], "open_fds": [r["open_fds"] for r in rows],
        "threads": [r["threads"] for r in rows], "children_rss_mb": [r["children_rss_mb"] for r in rows],
        "seconds": [r["seconds"] for r in rows], "statuses": [r["status"] for r in rows],
        "rss_growth_after_first_pct": round((last["rss_mb"] / first["rss_mb"] - 1) * 100, 1),
        "fd_growth_after_first": last["open_fds"] - first["open_fds"],
        "doctor_ok": doctor["ok"], "cpus": os.cpu_count(),
    }
    result["goal_met"] = result["rss_growth_after_first_pct"] < 10 and result["fd_growth_after_first"] <= 0
    report("soak", result, stored={**result, "per_run": rows}, indent=1)


if __name__ == "__main__":
    main()
