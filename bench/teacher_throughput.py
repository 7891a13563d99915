"""Teacher throughput against the loopback mock server (run in its own process), through the real generate flow.

    python bench/teacher_throughput.py [--examples 30000] [--latency 0.2] [--concurrency 64]

1. Throughput: the ``generate-examples`` flow (real ``OpenAITeacher`` on aiohttp, one Prefect task per batch,
   raw responses stored in DuckDB) against ``python -m tasks.teacher.mock_server --latency 0.2``, then the
   ``validate-examples`` flow, until ``--examples`` examples are accepted. ``seconds`` is the wall time of the
   generation flow calls (planning, hashing, sending, storing; Prefect's ephemeral server is started by a
   warm-up flow first, because its 10–20 s start is not the teacher's doing); ``limit_seconds`` =
   requests × latency / concurrency, the time the server's latency alone imposes; ``ratio_to_limit`` =
   limit_seconds / seconds.
2. Rerun: the same generation as a new run; ``rerun_calls`` is what the server received (0 expected) and
   ``rerun_seconds`` its wall time to the end of generation.
3. Rate limit: ``--rpm-requests`` requests with ``teacher.rpm`` set below a server that itself limits at 1.25×
   that rate (429 + Retry-After over a 10 s sliding window); observed RPM is measured by the server from
   arrival times, and ``rpm_server_429`` counts 429s it sent because the limit was exceeded.

Prints one JSON line last and writes it to bench/results/teacher_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _report import report

PARAMS = {"dialect": "python", "n_positives": 5, "n_negatives": 5}  # the regex kind's request params

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="prefect-bench-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MockProcess:
    """``python -m tasks.teacher.mock_server`` in its own process (the bench client and server get a core each)."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "tasks.teacher.mock_server", "--port", str(self.port),
                                      *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.stats()
                return
            except OSError:
                time.sleep(0.2)
        self.close()
        raise RuntimeError("mock server did not start within 30 s")

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/mock/stats", timeout=10) as r:
            return json.loads(r.read())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def start_run(home, cfg, run_id: str) -> None:
    from tasks import store

    store.create_run(home.db, run_id, cfg.name, "full", cfg.teacher.provider, cfg.model_dump(mode="json"))


def throughput(args, home) -> dict:
    from flows.generate import generate_examples
    from flows.validate import validate_examples
    from schemas.config import load_domain

    server = MockProcess("--latency", str(args.latency))
    try:
        accepted = requests = 0
        seconds = cpu = 0.0
        load_before = os.getloadavg()[0]
        runs = []
        n = math.ceil(args.examples / args.expected_accept_rate)
        seed_offset = 0
        while accepted < args.examples:
            cfg = load_domain("regex-python", "full", {
                "seed": 1234 + seed_offset, "dataset.n_requests": n, "teacher.provider": "openai",
                "teacher.model": "mock-teacher", "teacher.base_url": server.base_url,
                "teacher.concurrency": args.concurrency, "teacher.batch_size": args.batch_size,
                "teacher.max_retries": 4})
            run_id = f"bench-{seed_offset}"
            start_run(home, cfg, run_id)
            before = server.stats()["requests_received"]
            t0, c0 = time.perf_counter(), time.process_time()
            gen = generate_examples(run_id, home=str(home.root))
            seconds += time.perf_counter() - t0
            cpu += time.process_time() - c0
            requests += server.stats()["requests_received"] - before
            counts = validate_examples(run_id, home=str(home.root))["counts"]
            accepted += counts["accepted"]
            runs.append({"run_id": run_id, "n_requests": n, "generation": gen, "counts": counts})
            rate = max(counts["accepted"] / n, 0.5)
            n = math.ceil((args.examples - accepted) / rate * 1.05) + 10
            seed_offset += 1
        first = runs[0]
        cfg0 = load_domain("regex-python", "full", {
            "seed": 1234, "dataset.n_requests": first["n_requests"], "teacher.provider": "openai",
            "teacher.model": "mock-teacher", "teacher.base_url": server.base_url,
            "teacher.concurrency": args.concurrency, "teacher.batch_size": args.batch_size})
        start_run(home, cfg0, "bench-rerun")
        before = server.stats()["requests_received"]
        t0 = time.perf_counter()
        generate_examples("bench-rerun", home=str(home.root))
        rerun_seconds = time.perf_counter() - t0
        rerun_calls = server.stats()["requests_received"] - before
    finally:
        server.close()
    limit = requests * args.latency / args.concurrency
    return {"examples": accepted, "requests": requests, "seconds": round(seconds, 2),
            "limit_seconds": round(limit, 2), "ratio_to_limit": round(limit / seconds, 3),
            "rerun_calls": rerun_calls, "rerun_seconds": round(rerun_seconds, 2),
            # how busy the machine was: the client's own CPU per request, and the 1-minute load average (2 cores)
            "client_cpu_ms_per_request": round(cpu / max(requests, 1) * 1000, 3),
            "load_average_before_after": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            "generation_runs": [{"n_requests": r["n_requests"], "accepted": r["counts"]["accepted"],
                                 "flow_seconds": r["generation"]["seconds"]} for r in runs]}


def rate_limited(args) -> dict:
    from schemas.config import TeacherConfig
    from schemas.example import RequestSpec
    from tasks.teacher.openai_teacher import OpenAITeacher

    server = MockProcess("--latency", str(args.latency), "--rate-limit-rpm", str(args.rpm * 1.25),
                         "--rate-limit-window", "10")
    try:
        cfg = TeacherConfig(provider="openai", model="mock-teacher", base_url=server.base_url,
                            concurrency=args.concurrency, rpm=args.rpm)
        teacher = OpenAITeacher(cfg)
        reqs = [teacher.build_request("regex-python", RequestSpec(index=i, seed=10_000 + i, topic="text",
                                                                  difficulty=2), PARAMS)
                for i in range(args.rpm_requests)]
        t0 = time.perf_counter()
        calls = teacher.complete_batch(reqs)
        wall = time.perf_counter() - t0
        stats = server.stats()
    finally:
        server.close()
    observed = stats["observed_rpm"]
    return {"rpm_configured": args.rpm, "rpm_observed": round(observed, 1),
            "rpm_ratio": round(observed / args.rpm, 4), "rpm_server_limit": args.rpm * 1.25,
            "rpm_server_429": stats["rate_limited"], "rpm_requests": len(reqs),
            "rpm_ok": sum(c.status == "ok" for c in calls), "rpm_seconds": round(wall, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=30_000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--expected-accept-rate", type=float, default=0.96)
    parser.add_argument("--rpm", type=int, default=1200)
    parser.add_argument("--rpm-requests", type=int, default=600)
    parser.add_argument("--skip-rpm", action="store_true")
    parser.add_argument("--only-rpm", action="store_true", help="just the rate-limit scenario (no results file)")
    args = parser.parse_args()

    if args.only_rpm:
        print(json.dumps(rate_limited(args)))
        return
    from prefect import flow

    from schemas.run import Home

    home = Home.from_env(tempfile.mkdtemp(prefix="loraforge-bench-"))

    @flow
    def warm_up() -> int:
        return 1

    warm_up()  # starts Prefect's ephemeral server (10-20 s) outside the measured time
    result = {"latency_s": args.latency, "concurrency": args.concurrency, **throughput(args, home)}
    if not args.skip_rpm:
        result.update(rate_limited(args))
    report("teacher_throughput", result)


if __name__ == "__main__":
    main()
