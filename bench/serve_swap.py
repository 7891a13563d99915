"""Hot swap under load: a client at concurrency 16 while one domain's champion is flipped (promote / rollback).

    python bench/serve_swap.py [--seconds 60] [--flips 30] [--home DIR]

Self-contained: in an empty LORAFORGE_HOME (a temporary one unless --home is given) it first trains, on the tiny
profile, the adapters it needs (two of regex-python, one of regex-re2), promotes them, and starts `loraforge serve`
for both domains. Then 16 closed-loop clients ask both domains (3 of 4 requests to regex-python) while regex-python's
champion is flipped every seconds/(flips+1) seconds through the registry (the same calls as `loraforge promote
--force` and `loraforge rollback`). Each promotion promotes a fresh candidate, as the gate does: a copy of the second
trained adapter under a new id, written (manifest last, as training writes it) half a period before its promotion
while the server is serving; each rollback restores the first adapter.

Figures: requests, failed_requests (any non-200 or transport error), wrong_adapter_answers (a regex-python answer
whose system_fingerprint was not the champion at any moment between the request's start and its answer), swaps and
swap_ms_p50/p95 (the registry call that moved the pointer returned → first answer from the new champion), split
into cold swaps (the server loaded the adapter on the swap's path) and warm ones (it was attached already: a
preloaded candidate or a former champion kept warm) from the server's own swap log lines; the server-side batch
durations (a swap waits for the batch in flight, then for the new adapter's first batch) and preload times.
Prints one JSON line last; writes bench/results/serve_swap.json. On a shared CPU the figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _report import report, stamp
from _serve import closed_loop, ensure_adapters, histogram, pct, promote, start_server, stop_server

FLIPPED, OTHER = "regex-python", "regex-re2"
SWAP_LINE = re.compile(rf"domain {FLIPPED} → (\S+) \((\d+) ms, (loaded now|already attached)\)")
PRELOAD_LINE = re.compile(rf"domain {FLIPPED}: candidate (\S+) preloaded \((\d+) ms\)")


def was_champion(history: list[tuple[float, float, str]], fp: str, t0: float, t1: float) -> bool:
    """fp was the champion at some moment in [t0, t1]. ``history`` holds (registry call started, returned, new
    champion); the pointer moved somewhere in between, so a reign runs from its call's start to the end of the next
    call (the benefit of that doubt is the registry call's duration)."""
    for k, (start, _, champ) in enumerate(history):
        end = history[k + 1][1] if k + 1 < len(history) else float("inf")
        if champ == fp and start <= t1 and t0 <= end:
            return True
    return False


def fresh_candidate(home: Path, row: dict, n: int) -> dict:
    """A new candidate of ``row``'s domain as training leaves one: its files under a new id, metrics.json written last,
    and its row in the registry (same weights as ``row``; a new immutable name is all serving sees)."""
    from schemas.run import Home
    from tasks import store

    h = Home.from_env(home)
    new_id = f"{row['adapter_id']}-v{n:02d}"
    src, dst = Path(row["path"]), h.adapters / row["domain"] / new_id
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("metrics.json", "checkpoints"))
    shutil.copy2(src / "metrics.json", dst / "metrics.json")
    new = {k: v for k, v in row.items() if k not in ("created_at", "updated_at")}
    new |= {"adapter_id": new_id, "path": str(dst), "status": "candidate"}
    store.record_adapter(h.db, new)
    return new


async def run(url: str, home: Path, a: dict, b: dict, seconds: float, flips: int) -> tuple[list, list, list, str]:
    import httpx

    from schemas.run import Home
    from tasks import registry

    h = Home.from_env(home)
    history: list[tuple[float, float, str]] = [(0.0, 0.0, a["adapter_id"])]
    loads = [os.getloadavg()[0]]
    models = [FLIPPED, FLIPPED, OTHER, FLIPPED]
    stop = asyncio.Event()
    client = asyncio.create_task(closed_loop(url, models, 16, 10 * seconds + 600, stop=stop))
    start, period = time.monotonic(), seconds / (flips + 1)
    for k in range(flips):
        if k % 2 == 0:  # the next promotion's candidate appears half a period before it, while serving
            await asyncio.sleep(max(0.0, start + (k + 0.5) * period - time.monotonic()))
            candidate = await asyncio.to_thread(fresh_candidate, home, b, k // 2 + 1)
        await asyncio.sleep(max(0.0, start + (k + 1) * period - time.monotonic()))
        t_call = time.monotonic()
        if k % 2 == 0:
            await asyncio.to_thread(promote, home, candidate)
            new = candidate["adapter_id"]
        else:
            await asyncio.to_thread(registry.rollback, h.db, h.adapters, FLIPPED)
            new = a["adapter_id"]
        history.append((t_call, time.monotonic(), new))  # the pointer has moved when the registry call returns
        loads.append(os.getloadavg()[0])
    await asyncio.sleep(max(period, 2.0))  # the last flip is observed too (the registry calls may run late)
    stop.set()
    results = await client
    metrics = httpx.get(url + "/metrics", timeout=30).text
    loads.append(os.getloadavg()[0])
    return results, history, loads, metrics


def swap_kinds(log_text: str, history: list) -> list[str | None]:
    """For each flip, "cold" or "warm" as the server logged its swap (None where the log and the flips disagree)."""
    lines = SWAP_LINE.findall(log_text)[1:]  # the first is the start-up champion
    kinds = []
    for k, (_, _, new) in enumerate(history[1:]):
        ok = k < len(lines) and lines[k][0] == new
        kinds.append(("cold" if lines[k][2] == "loaded now" else "warm") if ok else None)
    return kinds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--flips", type=int, default=30, help="champion changes (at least 12 for a p95 worth reading)")
    p.add_argument("--home", type=Path, default=None, help="a LORAFORGE_HOME to (re)use; default: a fresh one")
    args = p.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="serve-swap-"))
    t0 = time.perf_counter()
    adapters = ensure_adapters(home, {FLIPPED: 2, OTHER: 1})
    a, b = adapters[FLIPPED]
    promote(home, a)
    promote(home, adapters[OTHER][0])
    setup_s = time.perf_counter() - t0
    log = home / "serve-swap.log"
    proc, url = start_server(home, [FLIPPED, OTHER], log)
    try:
        results, history, loads, metrics = asyncio.run(run(url, home, a, b, args.seconds, args.flips))
    finally:
        stop_server(proc)
    failed = [r for r in results if r["status"] != 200]
    wrong = [r for r in results if r["status"] == 200 and r["model"] == FLIPPED
             and not was_champion(history, r["fingerprint"], r["t0"], r["t1"])]
    log_text = log.read_text()
    swap_ms, by_kind = [], {"cold": [], "warm": [], None: []}
    for (_, t, new), kind in zip(history[1:], swap_kinds(log_text, history), strict=True):
        first = min((r["t1"] for r in results if r["status"] == 200 and r["model"] == FLIPPED
                     and r["fingerprint"] == new and r["t1"] > t), default=None)
        if first is not None and first - t < 10:  # the next flip undoes it otherwise
            swap_ms.append((first - t) * 1000)
            by_kind[kind].append((first - t) * 1000)
    server_ms = {"cold": [], "warm": []}
    for _, ms, how in SWAP_LINE.findall(log_text)[1:]:
        server_ms["cold" if how == "loaded now" else "warm"].append(float(ms))
    preload_ms = [float(ms) for _, ms in PRELOAD_LINE.findall(log_text)]
    batch_s, batch_size = histogram(metrics, "loraforge_batch_seconds"), histogram(metrics, "loraforge_batch_size")
    figures = {"bench": "serve_swap", **stamp(), "device_note": "CPU figures on a shared machine (noisy)",
               "seconds": args.seconds, "setup_s": round(setup_s, 1), "requests": len(results),
               "failed_requests": len(failed), "wrong_adapter_answers": len(wrong), "swaps": len(history) - 1,
               "swaps_observed": len(swap_ms), "swap_ms_p50": pct(swap_ms, 0.5), "swap_ms_p95": pct(swap_ms, 0.95),
               "swap_ms_max": pct(swap_ms, 1.0),
               "swaps_cold": len(by_kind["cold"]), "swaps_warm": len(by_kind["warm"]),
               "swaps_unclassified": len(by_kind[None]),
               "swap_ms_cold_p50": pct(by_kind["cold"], 0.5), "swap_ms_cold_p95": pct(by_kind["cold"], 0.95),
               "swap_ms_warm_p50": pct(by_kind["warm"], 0.5), "swap_ms_warm_p95": pct(by_kind["warm"], 0.95),
               # on the worker thread, from the server's log: load (cold only) + route switch, and candidate preloads
               "server_switch_ms_cold_max": pct(server_ms["cold"], 1.0),
               "server_switch_ms_warm_max": pct(server_ms["warm"], 1.0),
               "preloads": len(preload_ms), "preload_ms_p50": pct(preload_ms, 0.5),
               "preload_ms_max": pct(preload_ms, 1.0),
               "batches": batch_s["count"], "batch_ms_mean": batch_s["mean_ms"], "batch_ms_p50": batch_s["p50_ms"],
               "batch_ms_p95": batch_s["p95_ms"], "batch_size_mean": batch_size["mean"],
               "loadavg_1m_during": {"start": round(loads[0], 2), "max": round(max(loads), 2),
                                     "end": round(loads[-1], 2)},
               "client_seconds": round(max(r["t1"] for r in results) - min(r["t0"] for r in results), 1),
               "failures_sample": [r.get("error") or r["status"] for r in failed[:5]]}
    report("serve_swap", figures)
    sys.exit(0 if not failed and not wrong else 1)


if __name__ == "__main__":
    main()
