"""Evaluation: which items, batched greedy generation (adapter merged), and scoring with the domain's kind.

Items come from a deterministic sample of the snapshot's held-out test split, the hand-written golden set
``configs/golden/<domain>.jsonl``, or a user's JSONL. Items that overlap the adapter's training data (the same
normalised prompt, or an equivalent answer by the kind's ``completion_key``) are excluded and counted in
``n_excluded``, never refused.

Scoring is the kind's (``kind.score``, tasks/kinds/<kind>/; it runs untrusted outputs with the same time limits
as validation). The metrics object ``M`` keeps the CLI contract's generic fields
(``n``, ``n_excluded``, ``semantic_accuracy`` — the kind's notion of right — with ``semantic_accuracy_ci``,
``exact_match``, ``mean_output_tokens``, ``latency_ms_p50``, ``latency_ms_p95``, ``by_topic``) and adds p95
output tokens, tokens/s and the serving-parity check (merged vs unmerged adapter on a sample); the kind's own
figures sit beside them (``kind.metrics``, e.g. a compile rate).

Bench: ``python bench/evaluate_throughput.py`` (1,000 items on the tiny CPU student).
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from pathlib import Path

from schemas.config import DomainConfig, configs_dir
from schemas.example import content_hash
from tasks.kinds import Kind, get_kind
from tasks.validate import LABEL_KEYS, prompt_key

EVAL_VERSION = "eval-v3"  # part of every cache key: a change in scoring invalidates cached results (v3: item rows
#                           carry the item's slice labels and reference fields, which the failure report reads)
GENERIC_ROW_KEYS = ("example_id", "topic", "prompt", "reference", "output", "semantic_ok", "exact", "timed_out",
                    "output_tokens", "latency_ms", "excluded", "labels", "item")  # the rest: the kind's own


# ------------------------------------------------------------------------------------------------ items
def student_prompt(template: str, text: str, kind: Kind) -> str:
    """A file's ``prompt`` as the student sees it: already rendered prompts stay, descriptions are rendered."""
    prefix, _, suffix = template.partition("{description}")
    if text.startswith(prefix) and text.endswith(suffix) and len(text) >= len(prefix) + len(suffix):
        return text
    return kind.render_prompt(template, text)


def read_items_file(path: str | Path, template: str, source: str, kind: Kind) -> tuple[list[dict], list[int]]:
    """Items of a JSONL file (``prompt`` or ``description``, ``completion``, the kind's fields such as
    ``positives``/``negatives``, optional ``topic`` and slice labels ``difficulty``/``style``/``concept``; unknown
    fields ignored) and the line numbers of rows that cannot be items.

    Item ids name the line (``golden-00012``), so every stored row traces back to the file."""
    items, invalid = [], []
    for n, line in enumerate(Path(path).read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            invalid.append(n)
            continue
        text = (row.get("prompt") or row.get("description")) if isinstance(row, dict) else None
        completion = row.get("completion") if isinstance(row, dict) else None
        fields = kind.item_fields(row) if isinstance(row, dict) else None
        if not (isinstance(text, str) and text.strip() and isinstance(completion, str) and completion.strip()
                and fields is not None):
            invalid.append(n)
            continue
        topic = str(row.get("topic") or "unknown")
        labels = {k: row[k] for k in LABEL_KEYS if isinstance(row.get(k), str | int) and not isinstance(row[k], bool)}
        items.append({"example_id": f"{source}-{n:05d}", "prompt": student_prompt(template, text, kind),
                      "completion": kind.normalise_completion(completion), **fields, "topic": topic,
                      "labels": {"topic": topic, **labels}})
    return items, invalid


def golden_path(domain: str) -> Path:
    return configs_dir() / "golden" / f"{domain}.jsonl"


def golden_items(cfg: DomainConfig) -> list[dict]:
    """The domain's hand-written golden set (empty when the domain ships none), capped at ``eval.n_golden``."""
    path = golden_path(cfg.name)
    if not path.is_file():
        return []
    items, _ = read_items_file(path, cfg.task.prompt_template, "golden", get_kind(cfg.task.kind))
    return items[: cfg.eval.n_golden] if cfg.eval.n_golden else items


def sample_items(rows: list[dict], n: int, seed: int) -> list[dict]:
    """A deterministic sample: the first ``n`` rows in hash(seed, example_id) order, independent of file order."""
    return sorted(rows, key=lambda r: content_hash("sample", seed, r["example_id"]))[:n]


def training_keys(train_rows: list[dict], kind: Kind) -> tuple[set[str], set[str]]:
    """What an evaluation item must not share with training data: normalised prompts and the kind's answer keys
    (equal keys: equivalent answers, e.g. by a canonical spelling)."""
    return ({prompt_key(r["prompt"]) for r in train_rows}, {kind.completion_key(r["completion"]) for r in train_rows})


def split_overlap(items: list[dict], keys: tuple[set[str], set[str]],
                  kind: Kind) -> tuple[list[dict], list[dict]]:
    """(kept, excluded): an item is excluded when its prompt, or an answer equivalent to its reference (the same
    ``completion_key``), occurs in the training data."""
    prompts, answers = keys
    kept, excluded = [], []
    for it in items:
        hit = prompt_key(it["prompt"]) in prompts or kind.completion_key(it["completion"]) in answers
        (excluded if hit else kept).append(it)
    return kept, excluded


def items_signature(items: list[dict], kind: Kind) -> str:
    """Content hash of an evaluation set (ids, prompts, references and the kind's fields), for the result cache."""
    names = kind.item_field_names
    return content_hash([[it["example_id"], it["prompt"], it["completion"], *(it[k] for k in names)]
                         for it in items], n=20)


# ----------------------------------------------------------------------------------------- generation
def trained_quantization(adapter_dir: str | Path | None) -> dict | None:
    """The bitsandbytes settings the adapter was trained on, from the ``metrics.json`` manifest tasks/train.py
    writes beside it (``quantized_4bit`` + ``quantization``); None for an adapter trained on a plain base."""
    manifest = Path(adapter_dir) / "metrics.json" if adapter_dir else None
    if manifest is None or not manifest.is_file():
        return None
    m = json.loads(manifest.read_text())
    return dict(m.get("quantization") or {"bnb_4bit_quant_type": "nf4"}) if m.get("quantized_4bit") else None


def base_precision(quantization: dict | None, cuda: bool) -> str:
    """How the base model's weights are loaded for evaluation: ``nf4`` (4-bit, as trained) | ``bf16`` | ``fp32``."""
    if quantization:
        return str(quantization.get("bnb_4bit_quant_type") or "nf4")
    return "bf16" if cuda else "fp32"


def _load(base_model: str, adapter_dir: str | None, quantization: dict | None = None):
    """Tokenizer and model; the base in 4-bit when ``quantization`` is given (the settings the adapter was
    trained with), so the adapter is evaluated on the very base it was trained on."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(adapter_dir or base_model)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    if quantization:
        from transformers import BitsAndBytesConfig

        q = {k: v for k, v in quantization.items() if k.startswith("bnb_4bit_")}
        compute = getattr(torch, q.get("bnb_4bit_compute_dtype") or "bfloat16") if cuda else torch.float32
        bnb = BitsAndBytesConfig(load_in_4bit=True, **{**q, "bnb_4bit_compute_dtype": compute})
        model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype, quantization_config=bnb,
                                                     device_map={"": 0} if cuda else {"": "cpu"})
    else:
        model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype)
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
    if cuda and not quantization:  # a 4-bit model is placed by device_map and cannot be moved
        model = model.to("cuda")
    model.eval()
    return model, tok


def load_model(base_model: str, adapter_dir: str | None):
    """Base model (in 4-bit when the adapter was trained so), with the adapter merged when one is given."""
    model, tok = _load(base_model, adapter_dir, trained_quantization(adapter_dir))
    return (model.merge_and_unload() if adapter_dir else model), tok


def generate(model, tok, prompts: list[str], *, batch_size: int, max_new_tokens: int,
             progress=None) -> tuple[list[str], list[int], list[float]]:
    """Greedy completions in batches; returns texts, output token counts and per-item latency (ms).

    Prompts are batched in length order (less padding) and results returned in input order."""
    import torch

    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    texts, n_tokens, latency = [""] * len(prompts), [0] * len(prompts), [0.0] * len(prompts)
    eos = tok.eos_token_id
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(model.device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                                 eos_token_id=eos)
        ms = (time.perf_counter() - t0) * 1000 / len(idx)
        for i, row in zip(idx, out[:, enc["input_ids"].shape[1]:].tolist(), strict=True):
            cut = row.index(eos) if eos in row else len(row)
            texts[i] = tok.decode([t for t in row[:cut] if t != tok.pad_token_id], skip_special_tokens=True)
            n_tokens[i], latency[i] = cut, ms
        if progress:
            progress(len(idx))
    return texts, n_tokens, latency


def generate_for_eval(base_model: str, adapter_dir: str | None, prompts: list[str], *, batch_size: int,
                      max_new_tokens: int, parity_n: int, progress=None, quantization: dict | None = None) -> dict:
    """Generate for every prompt with the adapter merged; on the first ``parity_n`` prompts, check that the merged
    model answers exactly as the unmerged adapter does (serving parity). The parity sample is generated merged as
    its own batch, exactly as unmerged, and those outputs are reused for the evaluation (no extra pass).

    The base is loaded as the adapter was trained (its manifest; ``quantization`` for a base model evaluated
    beside a 4-bit candidate): NF4 for a QLoRA adapter, so parity compares against the base that was trained on.
    ``base_precision`` in the result says which base was used."""
    import torch

    quantization = quantization if quantization is not None else trained_quantization(adapter_dir)
    model, tok = _load(base_model, adapter_dir, quantization)
    precision = base_precision(quantization, torch.cuda.is_available())
    parity, head = None, 0
    t0 = time.perf_counter()
    if adapter_dir and parity_n:
        head = min(parity_n, len(prompts))
        sample = prompts[:head]
        unmerged, _, _ = generate(model, tok, sample, batch_size=batch_size, max_new_tokens=max_new_tokens)
        model = model.merge_and_unload()
        t0 = time.perf_counter()
        first = generate(model, tok, sample, batch_size=batch_size, max_new_tokens=max_new_tokens, progress=progress)
        agree = sum(a == b for a, b in zip(unmerged, first[0], strict=True))
        parity = {"n": head, "agree": agree, "rate": round(agree / head, 4) if head else 1.0, "base": precision}
    else:
        if adapter_dir:
            model = model.merge_and_unload()
        first = ([], [], [])
    rest = generate(model, tok, prompts[head:], batch_size=batch_size, max_new_tokens=max_new_tokens,
                    progress=progress)
    texts, n_tokens, latency = (a + b for a, b in zip(first, rest, strict=True))
    return {"texts": texts, "n_tokens": n_tokens, "latency": latency,
            "generate_seconds": round(time.perf_counter() - t0, 3), "parity": parity, "base_precision": precision}


# -------------------------------------------------------------------------------------------- scoring
def score(items: list[dict], outputs: list[str], n_tokens: list[int], latency: list[float], *,
          cfg: DomainConfig) -> list[dict]:
    """One row per item: the generic figures (exact match, tokens, latency) beside the kind's verdict
    (``semantic_ok``, ``timed_out``) and its own per-item values; ``labels`` (the item's slices) and ``item`` (its
    reference fields, ``kind.item_field_names``) ride along for the failure report."""
    kind = get_kind(cfg.task.kind)
    texts = [kind.normalise_completion(o) for o in outputs]
    verdicts = kind.score(items, texts, cfg)
    return [{"example_id": it["example_id"], "topic": it.get("topic") or "unknown", "prompt": it["prompt"],
             "reference": it["completion"], "output": text, "exact": text == it["completion"], **v,
             "semantic_ok": bool(v["semantic_ok"]), "timed_out": bool(v.get("timed_out")),
             "output_tokens": int(nt), "latency_ms": round(float(ms), 3), "excluded": False,
             "labels": it.get("labels"), "item": {k: it[k] for k in kind.item_field_names if k in it}}
            for it, text, v, nt, ms in zip(items, texts, verdicts, n_tokens, latency, strict=True)]


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    """95 % Wilson score interval for k successes in n."""
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


def rate(k: int, n: int) -> float:
    return round(k / n, 4) if n else 0.0


def summarise(rows: list[dict], *, kind: Kind, generate_seconds: float | None = None,
              parity: dict | None = None) -> dict:
    """The metrics object M from per-item rows (excluded rows count only in ``n_excluded``); ``kind`` adds its own
    figures (``kind.metrics``, and ``kind.topic_metrics`` per topic)."""
    scored = [r for r in rows if not r.get("excluded")]
    n = len(scored)
    k = sum(r["semantic_ok"] for r in scored)
    tokens = [r["output_tokens"] for r in scored]
    latency = [r["latency_ms"] for r in scored]
    by_topic: dict[str, list[dict]] = defaultdict(list)
    for r in scored:
        by_topic[r["topic"]].append(r)
    return {
        "n": n, "n_excluded": len(rows) - n,
        "semantic_accuracy": rate(k, n), "semantic_accuracy_ci": wilson(k, n),
        "exact_match": rate(sum(r["exact"] for r in scored), n),
        "exact_match_ci": wilson(sum(r["exact"] for r in scored), n),
        "mean_output_tokens": round(sum(tokens) / n, 2) if n else 0.0,
        "p95_output_tokens": _pct([float(t) for t in tokens], 0.95),
        "latency_ms_p50": _pct(latency, 0.5), "latency_ms_p95": _pct(latency, 0.95),
        "tokens_per_s": round(sum(tokens) / generate_seconds, 1) if generate_seconds else None,
        **kind.metrics(scored),
        "serving_parity": parity,
        "by_topic": {
            t: {"n": len(rs), "semantic_accuracy": rate(sum(r["semantic_ok"] for r in rs), len(rs)),
                "semantic_accuracy_ci": wilson(sum(r["semantic_ok"] for r in rs), len(rs)), **kind.topic_metrics(rs)}
            for t, rs in sorted(by_topic.items())
        },
    }


def excluded_rows(items: list[dict]) -> list[dict]:
    """Rows for excluded items: stored so ``n_excluded`` traces back to rows too."""
    return [{"example_id": it["example_id"], "topic": it.get("topic") or "unknown", "prompt": it["prompt"],
             "reference": it["completion"], "excluded": True} for it in items]


def evaluate_sets(base_model: str, adapter_dir: str | None, sets: dict[str, list[dict]], cfg: DomainConfig, *,
                  excluded: dict[str, list[dict]] | None = None, progress=None,
                  quantization: dict | None = None) -> dict[str, tuple[dict, list[dict]]]:
    """Generate once for the items of every set (one model load) and score each set on its own.

    Returns ``{set_name: (M, rows)}``; rows include the set's excluded items (``excluded: true``), and the
    serving-parity figure and the base's precision (``base_precision``: nf4 | bf16 | fp32) are attached to every
    set's M."""
    excluded = excluded or {}
    names = [s for s in sets if sets[s]]
    allitems = [it for s in names for it in sets[s]]
    gen = {"texts": [], "n_tokens": [], "latency": [], "generate_seconds": 0.0, "parity": None,
           "base_precision": None}
    if allitems:
        gen = generate_for_eval(base_model, adapter_dir, [it["prompt"] for it in allitems],
                                batch_size=cfg.eval.batch_size, max_new_tokens=cfg.eval.max_new_tokens,
                                parity_n=cfg.eval.parity_n, progress=progress, quantization=quantization)
    rows = score(allitems, gen["texts"], gen["n_tokens"], gen["latency"], cfg=cfg) if allitems else []
    out, start = {}, 0
    for s in sets:
        part = rows[start:start + len(sets[s])]
        start += len(sets[s])
        # a set's share of the generation time, by item count (length-sorted batches mix the sets)
        secs = gen["generate_seconds"] * len(part) / len(allitems) if allitems else None
        part = part + excluded_rows(excluded.get(s, []))
        m = summarise(part, kind=get_kind(cfg.task.kind), generate_seconds=secs, parity=gen["parity"])
        out[s] = (m | {"base_precision": gen["base_precision"]}, part)
    return out


def evaluate_model(base_model: str, adapter_dir: str | None, items: list[dict], cfg: DomainConfig, *,
                   excluded: list[dict] | None = None, progress=None) -> tuple[dict, list[dict]]:
    """Generate for every item and score: ``(M, rows)``; excluded items count in ``n_excluded``."""
    return evaluate_sets(base_model, adapter_dir, {"items": items}, cfg, excluded={"items": excluded or []},
                         progress=progress)["items"]
