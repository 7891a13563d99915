"""Serving throughput: requests/s and latency p50/p95 at concurrency 1, 8 and 32 for the base model alone, one
adapter, and three adapters mixed in one stream.

    python bench/serve_throughput.py [--seconds 90] [--home DIR]

Self-contained: in an empty LORAFORGE_HOME (a temporary one unless --home is given) it first trains, on the tiny
profile, one adapter each for regex-python, regex-re2 and regex-logs, promotes them and starts `loraforge serve` for
the three. Each of the 9 cells runs closed-loop clients for seconds/9 (max_tokens 16). Goals (issue 16): three mixed
≥ 0.8× one adapter's requests/s (``mixed_over_single``, at concurrency 32) and ≥ 3× the requests/s of concurrency 1
at concurrency 32 (``c32_over_c1``, one adapter). The random-init base model writes its max_tokens of junk on every
request, while an adapter stops at EOS, so "base" is a cost reference, not a like-for-like comparison.
Prints one JSON line last; writes bench/results/serve_throughput.json. CPU figures on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _report import report, stamp
from _serve import closed_loop, ensure_adapters, pct, promote, start_server, stop_server

DOMAINS = ["regex-python", "regex-re2", "regex-logs"]
SCENARIOS = {"base": ["regex-python@base"], "one_adapter": ["regex-python"], "three_mixed": DOMAINS}


def cell(results: list[dict], seconds: float) -> dict:
    ok = [r for r in results if r["status"] == 200]
    lat = [(r["t1"] - r["t0"]) * 1000 for r in ok]
    return {"requests": len(results), "failed": len(results) - len(ok), "requests_per_s": round(len(ok) / seconds, 2),
            "latency_ms_p50": pct(lat, 0.5), "latency_ms_p95": pct(lat, 0.95)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=90)
    p.add_argument("--home", type=Path, default=None, help="a LORAFORGE_HOME to (re)use; default: a fresh one")
    args = p.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="serve-throughput-"))
    t0 = time.perf_counter()
    adapters = ensure_adapters(home, {d: 1 for d in DOMAINS})
    for d in DOMAINS:
        promote(home, adapters[d][0])
    setup_s = time.perf_counter() - t0
    proc, url = start_server(home, DOMAINS, home / "serve-throughput.log")
    per = args.seconds / 9
    cells: dict[str, dict] = {}
    try:
        asyncio.run(closed_loop(url, DOMAINS, 4, min(5.0, per)))  # warm-up (first batches pay for lazy init)
        for name, models in SCENARIOS.items():
            for c in (1, 8, 32):
                cells[f"{name}_c{c}"] = cell(asyncio.run(closed_loop(url, models, c, per)), per)
    finally:
        stop_server(proc)

    def rps(key: str) -> float:
        return cells[key]["requests_per_s"]

    def ratio(a: str, b: str) -> float | None:
        return round(rps(a) / rps(b), 3) if rps(b) else None

    figures = {"bench": "serve_throughput", **stamp(), "device_note": "CPU figures on a shared machine (noisy)",
               "seconds_per_cell": round(per, 1), "setup_s": round(setup_s, 1),
               "mixed_over_single": ratio("three_mixed_c32", "one_adapter_c32"),
               "c32_over_c1": ratio("one_adapter_c32", "one_adapter_c1"),
               "adapter_over_base_c32": ratio("one_adapter_c32", "base_c32"),
               **{f"{k}_rps": v["requests_per_s"] for k, v in cells.items()}}
    report("serve_throughput", figures, {**figures, "cells": cells})


if __name__ == "__main__":
    main()
