"""Prefect overhead in the embedded (ephemeral) mode: server start, per subflow, per task.

    python bench/prefect_overhead.py

Writes bench/results/prefect_overhead.json and prints the same figures as one JSON line last: seconds to the
first flow run (ephemeral server start included), then the mean overhead of an empty subflow and of an empty
task run. The pipeline uses 6 subflows and ~20 tasks for
the full profile, so its Prefect overhead is start + 6 × subflow + 20 × task.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="prefect-bench-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

t_import = time.perf_counter()
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

import_s = time.perf_counter() - t_import

from _report import report  # noqa: E402


@task(cache_policy=NO_CACHE)
def empty_task(i: int) -> int:
    return i


@flow
def empty_subflow(i: int) -> int:
    return i


@flow
def timing_flow(target: str, n: int) -> float:
    """Mean seconds per call of an empty task or an empty subflow, called from inside a flow."""
    fn = {"task": empty_task, "subflow": empty_subflow}[target]
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t0) / n


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # --help explains, runs nothing
    t0 = time.perf_counter()
    empty_subflow(0)
    first = time.perf_counter() - t0
    per_task = timing_flow("task", 50)
    per_subflow = timing_flow("subflow", 20)
    figures = {
        "bench": "prefect_overhead", "prefect_import_s": round(import_s, 2), "first_flow_run_s": round(first, 2),
        "per_subflow_s": round(per_subflow, 3), "per_task_s": round(per_task, 4),
        "pipeline_overhead_estimate_s": round(first + 6 * per_subflow + 20 * per_task, 1),
        "python": sys.version.split()[0], "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 1),
    }
    report("prefect_overhead", figures, indent=None)


if __name__ == "__main__":
    main()
