"""Validation throughput: 30,000 GrammarTeacher examples + 10 % hostile ones through validate + dedup + store.

Run from the repo root: ``python bench/validate_throughput.py [--n 30000] [--hostile 0.1]``.
Timed: in-memory candidates (raw teacher responses) → every check, exact and semantic dedup, decontamination
against the golden set → rows in a fresh DuckDB file (Prefect start-up and generation excluded; the matcher
runs in two worker processes). Prints one JSON line last (``examples``, ``seconds``, ``examples_per_s``,
``max_example_ms`` = the longest one regex spent in a worker, measured in the worker; also the hostile rows'
maximum and the machine's load average, since other processes share the 2 cores) and writes it to
bench/results/validate_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _report import report

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.config import load_domain  # noqa: E402
from tasks import store  # noqa: E402
from tasks.generate import plan_requests  # noqa: E402
from tasks.teacher.grammar_teacher import GrammarTeacher  # noqa: E402
from tasks.validate import load_eval_items, validation_tables  # noqa: E402

HOSTILE = [  # (regex, positives, negatives, expected reason) — made distinct per copy by a literal prefix
    ("{p}(a+)+", ["{p}aa"], ["{p}b"], "redos_static"),
    ("{p}(a|aa)*c", ["{p}ac"], ["{p}b"], "redos_static"),
    ("{p}(.*a){{12}}", ["{p}" + "a" * 12], ["{p}b"], "redos_static"),
    ("{p}(\\w+\\s?)*", ["{p}ab"], ["{p}!"], "redos_static"),
    ("{p}([a-z]+)*[0-9]", ["{p}a1"], ["{p}a"], "redos_static"),
    ("{p}(x+x+)+y", ["{p}xxy"], ["{p}y"], "redos_static"),
    ("{p}(\\d", ["{p}1"], ["x"], "compile_error"),
    ("```\n{p}\\d+\n```", ["{p}1"], ["x"], "not_terse"),
    ("Here is the regex: {p}\\d+", ["{p}1"], ["x"], "not_terse"),
    ("{p}\\d{{3}}", ["{p}12"], ["x"], "positive_mismatch"),
    ("{p}\\w+", ["{p}a"], ["{p}b"], "negative_match"),
]


def hostile_raw(k: int, rng: random.Random) -> str:
    regex, pos, neg, _ = HOSTILE[k % len(HOSTILE)]
    p = "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ", k=4)) + "-"
    return json.dumps({"description": f"hostile case {k} with prefix {p}", "regex": regex.format(p=p),
                       "positives": [s.format(p=p) for s in pos], "negatives": [s.format(p=p) for s in neg]})


def _cpu(ru) -> float:
    return ru.ru_utime + ru.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--hostile", type=float, default=0.1)
    ap.add_argument("--domain", default="regex-python")
    args = ap.parse_args()

    cfg = load_domain(args.domain, "full", {"dataset.n_requests": args.n})
    teacher = GrammarTeacher(cfg.teacher)
    t0 = time.perf_counter()
    requests = plan_requests(cfg, teacher)
    calls = {c.request_hash: {"status": c.status, "raw_response": c.raw_response}
             for c in teacher.complete_batch(requests)}
    planned = [{"request_hash": r.request_hash, "idx": i, "topic": r.spec.topic} for i, r in enumerate(requests)]
    rng = random.Random(7)
    for k in range(int(args.n * args.hostile)):
        h = f"hostile-{k:06d}"
        planned.append({"request_hash": h, "idx": len(planned), "topic": "hostile"})
        calls[h] = {"status": "ok", "raw_response": hostile_raw(k, rng)}
    gen_s = time.perf_counter() - t0
    eval_items = load_eval_items(cfg)

    import pyarrow as pa

    pa.Table.from_pylist([{"t": store.now()}])  # pyarrow imports pandas on its first datetime: a one-off start-up cost

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "loraforge.duckdb"
        store.init_db(db)
        load_before = os.getloadavg()[0]
        ru_self, ru_kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        tables = validation_tables(cfg, "bench-run", planned, calls, eval_items=eval_items)
        store.record_validation(db, tables["run_requests"], tables["examples"], tables["quarantine"])
        seconds = time.perf_counter() - t0
        cpu_parent = _cpu(resource.getrusage(resource.RUSAGE_SELF)) - _cpu(ru_self)
        cpu_workers = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - _cpu(ru_kids)
        counts = store.run_counts(db, "bench-run")
    seconds_of = tables["example_seconds"]
    max_hostile = max((seconds_of.get(p["request_hash"], 0.0) for p in planned if p["topic"] == "hostile"), default=0)
    hostile_reasons = Counter(r["reasons"][0] for r in tables["run_requests"].to_pylist() if r["topic"] == "hostile")
    result = {
        "examples": len(planned), "grammar": args.n, "hostile": len(planned) - args.n,
        "seconds": round(seconds, 2), "examples_per_s": round(len(planned) / seconds, 1),
        "max_example_ms": round(tables["max_example_s"] * 1000, 1), "generation_s_excluded": round(gen_s, 1),
        "counts": counts["counts"], "quarantine_reasons": counts["quarantine_reasons"],
        "hostile_first_reasons": dict(hostile_reasons), "golden_items": len(eval_items),
        "max_hostile_example_ms": round(max_hostile * 1000, 1),
        "load_avg_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)], "cpus": os.cpu_count(),
        # CPU actually consumed (user+sys): what the work costs, independent of how busy the machine was
        "cpu_s_parent": round(cpu_parent, 2), "cpu_s_workers": round(cpu_workers, 2),
    }
    report("validate_throughput", result)


if __name__ == "__main__":
    main()
