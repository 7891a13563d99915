"""Evaluation: batched greedy generation from a base model (optionally with a LoRA adapter merged in) and
scoring of the generated regexes with the same time-limited matcher that validation uses.

Metrics (the contract's ``M``): compile rate, semantic accuracy (every positive full-matches and no negative
does) with a 95 % Wilson interval, exact match (reported, never gated on), mean output tokens, latency
p50/p95 per item (batch wall time shared by the batch's items), the rate of outputs whose matching exceeded
the time limit (``redos_vulnerable_rate``), and a per-topic breakdown.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict

from tasks.kinds import regex as kind


def load_model(base_model: str, adapter_dir: str | None):
    """Base model, with the adapter merged for generation speed when one is given."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(adapter_dir or base_model)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype)
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    if torch.cuda.is_available():
        model = model.to("cuda")
    model.eval()
    return model, tok


def generate(model, tok, prompts: list[str], *, batch_size: int, max_new_tokens: int,
             progress=None) -> tuple[list[str], list[int], list[float]]:
    """Greedy completions in batches; returns texts, output token counts and per-item latency (ms)."""
    import torch

    texts, n_tokens, latency = [], [], []
    eos = tok.eos_token_id
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start:start + batch_size]
        enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                                 eos_token_id=eos)
        ms = (time.perf_counter() - t0) * 1000 / len(batch)
        for row in out[:, enc["input_ids"].shape[1]:].tolist():
            cut = row.index(eos) if eos in row else len(row)
            row = [t for t in row[:cut] if t != tok.pad_token_id]
            texts.append(tok.decode(row, skip_special_tokens=True))
            n_tokens.append(cut)
            latency.append(ms)
        if progress:
            progress(len(batch))
    return texts, n_tokens, latency


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    if n == 0:
        return [0.0, 0.0]
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [round(max(0.0, c - h), 4), round(min(1.0, c + h), 4)]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))], 2)


def score(items: list[dict], outputs: list[str], n_tokens: list[int], latency: list[float], *,
          timeout_s: float, n_excluded: int = 0) -> tuple[dict, list[dict]]:
    """Score outputs against items (dicts with example_id, completion, positives, negatives, topic)."""
    texts = [kind.normalise_completion(o) for o in outputs]
    results = kind.check_batch([(t, it["positives"], it["negatives"]) for t, it in zip(texts, items, strict=True)],
                               timeout_s)
    rows = []
    for it, text, res, nt in zip(items, texts, results, n_tokens, strict=True):
        rows.append({
            "example_id": it["example_id"], "topic": it.get("topic") or "unknown", "output": text,
            "compiled": bool(res.compiled and text), "timed_out": res.timed_out,
            "semantic_ok": bool(text) and res.all_ok(len(it["positives"]), len(it["negatives"])),
            "exact": text == it["completion"], "output_tokens": nt,
        })
    n = len(rows)
    k = sum(r["semantic_ok"] for r in rows)
    by_topic: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_topic[r["topic"]].append(r)
    metrics = {
        "n": n, "n_excluded": n_excluded,
        "compile_rate": round(sum(r["compiled"] for r in rows) / n, 4) if n else 0.0,
        "semantic_accuracy": round(k / n, 4) if n else 0.0,
        "semantic_accuracy_ci": wilson(k, n),
        "exact_match": round(sum(r["exact"] for r in rows) / n, 4) if n else 0.0,
        "mean_output_tokens": round(sum(n_tokens) / n, 2) if n else 0.0,
        "latency_ms_p50": _pct(latency, 0.5), "latency_ms_p95": _pct(latency, 0.95),
        "redos_vulnerable_rate": round(sum(r["timed_out"] for r in rows) / n, 4) if n else 0.0,
        "by_topic": {
            t: {"n": len(rs), "semantic_accuracy": round(sum(r["semantic_ok"] for r in rs) / len(rs), 4)}
            for t, rs in sorted(by_topic.items())
        },
    }
    for r in rows:
        r.pop("timed_out")
    return metrics, rows


def evaluate_model(base_model: str, adapter_dir: str | None, items: list[dict], *, batch_size: int,
                   max_new_tokens: int, timeout_s: float, n_excluded: int = 0,
                   progress=None) -> tuple[dict, list[dict]]:
    """Generate for every item's prompt and score; returns (metrics M, per-item rows)."""
    if not items:
        return score([], [], [], [], timeout_s=timeout_s, n_excluded=n_excluded)
    model, tok = load_model(base_model, adapter_dir)
    outputs, n_tokens, latency = generate(model, tok, [it["prompt"] for it in items], batch_size=batch_size,
                                          max_new_tokens=max_new_tokens, progress=progress)
    return score(items, outputs, n_tokens, latency, timeout_s=timeout_s, n_excluded=n_excluded)
