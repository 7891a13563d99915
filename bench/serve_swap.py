"""Hot swap under load: a client at concurrency 16 while one domain's champion is flipped (promote / rollback).

    python bench/serve_swap.py [--seconds 60] [--flips 12] [--home DIR]

Self-contained: in an empty LORAFORGE_HOME (a temporary one unless --home is given) it first trains, on the tiny
profile, the adapters it needs (two of regex-python, one of regex-re2), promotes them, and starts `loraforge serve`
for both domains. Then 16 closed-loop clients ask both domains (3 of 4 requests to regex-python) while regex-python's
champion is flipped every seconds/flips seconds through the registry (the same calls as `loraforge promote --force`
and `loraforge rollback`).

Figures: requests, failed_requests (any non-200 or transport error), wrong_adapter_answers (a regex-python answer
whose system_fingerprint was not the champion at any moment between the request's start and its answer), swaps and
swap_ms_p50/p95 (the registry call that moved the pointer returned → first answer from the new champion).
Prints one JSON line last; writes bench/results/serve_swap.json. On a shared CPU the figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from _report import report, stamp
from _serve import closed_loop, ensure_adapters, pct, promote, start_server, stop_server

FLIPPED, OTHER = "regex-python", "regex-re2"


def was_champion(history: list[tuple[float, float, str]], fp: str, t0: float, t1: float) -> bool:
    """fp was the champion at some moment in [t0, t1]. ``history`` holds (registry call started, returned, new
    champion); the pointer moved somewhere in between, so a reign runs from its call's start to the end of the next
    call (the benefit of that doubt is the registry call's duration)."""
    for k, (start, _, champ) in enumerate(history):
        end = history[k + 1][1] if k + 1 < len(history) else float("inf")
        if champ == fp and start <= t1 and t0 <= end:
            return True
    return False


async def run(url: str, home: Path, a: dict, b: dict, seconds: float, flips: int) -> tuple[list, list]:
    from schemas.run import Home
    from tasks import registry

    h = Home.from_env(home)
    history: list[tuple[float, float, str]] = [(0.0, 0.0, a["adapter_id"])]
    models = [FLIPPED, FLIPPED, OTHER, FLIPPED]
    stop = asyncio.Event()
    client = asyncio.create_task(closed_loop(url, models, 16, 10 * seconds + 600, stop=stop))
    start, period = time.monotonic(), seconds / (flips + 1)
    for k in range(flips):
        await asyncio.sleep(max(0.0, start + (k + 1) * period - time.monotonic()))
        t_call = time.monotonic()
        if k % 2 == 0:
            await asyncio.to_thread(promote, home, b)
            new = b["adapter_id"]
        else:
            await asyncio.to_thread(registry.rollback, h.db, h.adapters, FLIPPED)
            new = a["adapter_id"]
        history.append((t_call, time.monotonic(), new))  # the pointer has moved when the registry call returns
    await asyncio.sleep(max(period, 2.0))  # the last flip is observed too (the registry calls may run late)
    stop.set()
    return await client, history


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--flips", type=int, default=12)
    p.add_argument("--home", type=Path, default=None, help="a LORAFORGE_HOME to (re)use; default: a fresh one")
    args = p.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="serve-swap-"))
    t0 = time.perf_counter()
    adapters = ensure_adapters(home, {FLIPPED: 2, OTHER: 1})
    a, b = adapters[FLIPPED]
    promote(home, a)
    promote(home, adapters[OTHER][0])
    setup_s = time.perf_counter() - t0
    proc, url = start_server(home, [FLIPPED, OTHER], home / "serve-swap.log")
    try:
        results, history = asyncio.run(run(url, home, a, b, args.seconds, args.flips))
    finally:
        stop_server(proc)
    failed = [r for r in results if r["status"] != 200]
    wrong = [r for r in results if r["status"] == 200 and r["model"] == FLIPPED
             and not was_champion(history, r["fingerprint"], r["t0"], r["t1"])]
    swap_ms = []
    for _, t, new in history[1:]:
        first = min((r["t1"] for r in results if r["status"] == 200 and r["model"] == FLIPPED
                     and r["fingerprint"] == new and r["t1"] > t), default=None)
        if first is not None and first - t < 10:  # the next flip undoes it otherwise
            swap_ms.append((first - t) * 1000)
    figures = {"bench": "serve_swap", **stamp(), "device_note": "CPU figures on a shared machine (noisy)",
               "seconds": args.seconds, "setup_s": round(setup_s, 1), "requests": len(results),
               "failed_requests": len(failed), "wrong_adapter_answers": len(wrong), "swaps": len(history) - 1,
               "swaps_observed": len(swap_ms), "swap_ms_p50": pct(swap_ms, 0.5), "swap_ms_p95": pct(swap_ms, 0.95),
               "client_seconds": round(max(r["t1"] for r in results) - min(r["t0"] for r in results), 1),
               "failures_sample": [r.get("error") or r["status"] for r in failed[:5]]}
    report("serve_swap", figures)
    sys.exit(0 if not failed and not wrong else 1)


if __name__ == "__main__":
    main()
