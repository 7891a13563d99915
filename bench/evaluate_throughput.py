"""Evaluation throughput: 1,000 items scored end to end on the tiny CPU student (goal < 60 s).

    python bench/evaluate_throughput.py [--n 1000] [--adapter ADAPTER_DIR] [--base-model DIR] [--with-base]

Items are grammar-written regex examples (seeded) rendered with the regex-python prompt. Each model is timed
through ``tasks.evaluate.evaluate_model`` — model load, batched greedy generation (adapter merged), the
serving-parity sample, the time-limited matcher, DFA equivalence and the ReDoS guard — exactly what the
``evaluate`` stage runs per model and set. Without ``--adapter`` the newest adapter under ``$LORAFORGE_HOME``
(default ./.loraforge) is used when there is one. The random-init base model always writes ``max_new_tokens``
of junk, so it is the worst case; a trained adapter stops after a few tokens.
Prints one JSON line last; writes bench/results/evaluate_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from _report import save

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.config import load_domain  # noqa: E402
from schemas.run import Home  # noqa: E402
from tasks.evaluate import evaluate_model  # noqa: E402
from tasks.kinds.regex import KIND  # noqa: E402
from tasks.kinds.regex.grammar import TOPICS, generate_example  # noqa: E402
from tasks.student import resolve_base_model  # noqa: E402


def items(n: int, template: str) -> list[dict]:
    out = []
    for i in range(n):
        ex = generate_example(90_000_000 + i, TOPICS[i % len(TOPICS)], 1 + i % 3)
        out.append({"example_id": f"b{i:05d}", "prompt": KIND.render_prompt(template, ex["description"]),
                    "completion": ex["regex"], "positives": ex["positives"], "negatives": ex["negatives"],
                    "topic": ex["topic"]})
    return out


def newest_adapter(home: Home) -> str | None:
    found = sorted(home.adapters.glob("*/ad-*/adapter_config.json"), key=lambda p: p.stat().st_mtime)
    return str(found[-1].parent) if found else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--adapter", default=None, help="adapter directory (default: newest under $LORAFORGE_HOME)")
    ap.add_argument("--base-model", default=None, help="base model directory (default: the tiny student)")
    ap.add_argument("--with-base", action="store_true",
                    help="also time the random-init base model (the worst case: max_new_tokens of junk per item)")
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cfg = load_domain("regex-python", "full")
    home = Home.from_env()
    adapter = args.adapter or newest_adapter(home)
    if args.base_model:
        base = args.base_model
    elif adapter:
        base = json.loads((Path(adapter) / "adapter_config.json").read_text())["base_model_name_or_path"]
    else:
        base = resolve_base_model("tiny-llama", tempfile.mkdtemp(prefix="bench-"))
    data = items(args.n, cfg.task.prompt_template)
    figures: dict = {"n": args.n, "batch_size": cfg.eval.batch_size, "max_new_tokens": cfg.eval.max_new_tokens,
                     "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                     "loadavg_1m_start": round(os.getloadavg()[0], 2)}  # a shared machine: say how busy it was
    figures["adapter_dir"] = adapter
    for label, adir in (("adapter", adapter), ("base", None)):
        if (label == "adapter" and not adir) or (label == "base" and adapter and not args.with_base):
            continue
        t0 = time.perf_counter()
        m, _ = evaluate_model(base, adir, data, cfg)
        secs = time.perf_counter() - t0
        figures[label] = {"seconds": round(secs, 2), "items_per_s": round(args.n / secs, 1),
                          "semantic_accuracy": m["semantic_accuracy"], "compile_rate": m["compile_rate"],
                          "mean_output_tokens": m["mean_output_tokens"], "tokens_per_s": m["tokens_per_s"],
                          "latency_ms_p50": m["latency_ms_p50"], "dfa_undecided": m["dfa_undecided"],
                          "loadavg_1m_end": round(os.getloadavg()[0], 2)}
        print(f"{label}: {figures[label]}", file=sys.stderr)
        save("evaluate_throughput", figures)  # after each model: a partial run still reports
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
