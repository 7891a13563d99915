"""Evaluation: which items, batched greedy generation (adapter merged), and scoring with the regex kind.

Items come from a deterministic sample of the snapshot's held-out test split, the hand-written golden set
``configs/golden/<domain>.jsonl``, or a user's JSONL. Items that overlap the adapter's training data (the same
normalised prompt, or the identical regex) are excluded and counted in ``n_excluded``, never refused.

Scoring uses the kind's time-limited matcher (``check_batch``): an output is *semantically* right when it
compiles in the dialect, full-matches every positive and no negative, and — where the DFA comparison with the
reference is decidable in time — no distinguishing string from the symmetric difference tells them apart (each
one is confirmed with the real matcher). The metrics object ``M`` keeps the CLI contract's fields
(``n``, ``n_excluded``, ``compile_rate``, ``semantic_accuracy``, ``semantic_accuracy_ci``, ``exact_match``,
``mean_output_tokens``, ``latency_ms_p50``, ``latency_ms_p95``, ``redos_vulnerable_rate``, ``by_topic``) and
adds DFA equivalence (a lower bound, with the number undecided), p95 output tokens, tokens/s and the
serving-parity check (merged vs unmerged adapter on a sample).

Bench: ``python bench/evaluate_throughput.py`` (1,000 items on the tiny CPU student).
"""

from __future__ import annotations

import inspect
import json
import math
import time
from collections import defaultdict
from pathlib import Path

from schemas.config import DomainConfig, configs_dir
from schemas.example import content_hash
from tasks.kinds import regex as kind
from tasks.validate import prompt_key

EVAL_VERSION = "eval-v2"  # part of every cache key: a change in scoring invalidates cached results


# ------------------------------------------------------------------------------------------------ items
def student_prompt(template: str, text: str) -> str:
    """A file's ``prompt`` as the student sees it: already rendered prompts stay, descriptions are rendered."""
    prefix, _, suffix = template.partition("{description}")
    if text.startswith(prefix) and text.endswith(suffix) and len(text) >= len(prefix) + len(suffix):
        return text
    return kind.render_prompt(template, text)


def read_items_file(path: str | Path, template: str, source: str) -> tuple[list[dict], list[int]]:
    """Items of a JSONL file (``prompt`` or ``description``, ``completion``, ``positives``, ``negatives``,
    optional ``topic``; unknown fields ignored) and the line numbers of rows that cannot be items.

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
        pos, neg = (row.get("positives") or [], row.get("negatives") or []) if isinstance(row, dict) else ([], [])
        if not (isinstance(text, str) and text.strip() and isinstance(completion, str) and completion.strip()
                and all(isinstance(s, str) for s in [*pos, *neg])):
            invalid.append(n)
            continue
        items.append({"example_id": f"{source}-{n:05d}", "prompt": student_prompt(template, text),
                      "completion": kind.normalise_completion(completion), "positives": list(pos),
                      "negatives": list(neg), "topic": str(row.get("topic") or "unknown")})
    return items, invalid


def golden_path(domain: str) -> Path:
    return configs_dir() / "golden" / f"{domain}.jsonl"


def golden_items(cfg: DomainConfig) -> list[dict]:
    """The domain's hand-written golden set (empty when the domain ships none), capped at ``eval.n_golden``."""
    path = golden_path(cfg.name)
    if not path.is_file():
        return []
    items, _ = read_items_file(path, cfg.task.prompt_template, "golden")
    return items[: cfg.eval.n_golden] if cfg.eval.n_golden else items


def sample_items(rows: list[dict], n: int, seed: int) -> list[dict]:
    """A deterministic sample: the first ``n`` rows in hash(seed, example_id) order, independent of file order."""
    return sorted(rows, key=lambda r: content_hash("sample", seed, r["example_id"]))[:n]


def regex_key(regex: str) -> str:
    """Equal keys mean equal languages: the kind's canonical spelling where it has one, else the text itself."""
    text = kind.normalise_completion(regex)
    try:
        from tasks.kinds.regex_analysis import canonical
    except ImportError:
        return text
    try:
        return canonical(text)
    except Exception:  # not parseable by the canonicaliser: compare the text
        return text


def training_keys(train_rows: list[dict]) -> tuple[set[str], set[str]]:
    """What an evaluation item must not share with training data: normalised prompts and regex languages."""
    return ({prompt_key(r["prompt"]) for r in train_rows}, {regex_key(r["completion"]) for r in train_rows})


def split_overlap(items: list[dict], keys: tuple[set[str], set[str]]) -> tuple[list[dict], list[dict]]:
    """(kept, excluded): an item is excluded when its prompt, or a regex equivalent to its reference (same
    canonical form), occurs in the training data."""
    prompts, regexes = keys
    kept, excluded = [], []
    for it in items:
        hit = prompt_key(it["prompt"]) in prompts or regex_key(it["completion"]) in regexes
        (excluded if hit else kept).append(it)
    return kept, excluded


def items_signature(items: list[dict]) -> str:
    """Content hash of an evaluation set (ids, prompts, references and strings), for the result cache."""
    return content_hash([[it["example_id"], it["prompt"], it["completion"], it["positives"], it["negatives"]]
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
def _accepts_dialect(fn) -> bool:
    return "dialect" in inspect.signature(fn).parameters


def _check(items: list[tuple], timeout_s: float, dialect: str) -> list:
    if _accepts_dialect(kind.check_batch):
        return kind.check_batch(items, timeout_s, dialect=dialect)
    return kind.check_batch(items, timeout_s)


def _redos(regexes: list[str], dialect: str, timeout_s: float) -> list[str | None]:
    guard = getattr(kind, "redos_guard", None)
    if guard is None or not regexes:
        return [None] * len(regexes)
    return list(guard(regexes, dialect, timeout_s))


def _equivalence(pairs: list[tuple[str, str]], dialect: str, timeout_s: float) -> list[tuple[str, list[str]]]:
    batch = getattr(kind, "equivalence_batch", None)
    if batch is not None:
        return [(v, list(s or [])) for v, s in batch(pairs, dialect, timeout_s)] if pairs else []
    one = getattr(kind, "equivalence", None)
    return [(v, list(s or [])) for v, s in (one(a, b, dialect, timeout_s) for a, b in pairs)] if one else \
        [("undecided", [])] * len(pairs)


def score(items: list[dict], outputs: list[str], n_tokens: list[int], latency: list[float], *,
          timeout_s: float, dialect: str = "python", equivalence_timeout_s: float = 0.5,
          redos_timeout_s: float = 1.0, max_distinguishing: int = 3) -> list[dict]:
    """One row per item: compiled, semantic_ok, exact, DFA verdict, ReDoS finding, tokens, latency."""
    texts = [kind.normalise_completion(o) for o in outputs]
    results = _check([(t, it["positives"], it["negatives"]) for t, it in zip(texts, items, strict=True)],
                     timeout_s, dialect)
    # DFA comparison only where the strings could not already tell output and reference apart
    # (a failed positive or negative *is* a distinguishing string, so the verdict is then "different").
    verdicts: list[str] = []
    need: list[int] = []
    for i, (it, text, res) in enumerate(zip(items, texts, results, strict=True)):
        if not text or not res.compiled or res.timed_out:
            verdicts.append("n/a")
        elif not res.all_ok(len(it["positives"]), len(it["negatives"])):
            verdicts.append("different")
        else:
            verdicts.append("undecided")
            need.append(i)
    confirm: list[tuple[int, str]] = []  # (item index, distinguishing string) to confirm with the real matcher
    for i, (verdict, strings) in zip(need, _equivalence([(texts[i], items[i]["completion"]) for i in need],
                                                        dialect, equivalence_timeout_s), strict=True):
        verdicts[i] = verdict
        confirm += [(i, s) for s in strings[:max_distinguishing]]
    distinguished = defaultdict(int)
    if confirm:  # the string is distinguishing when the real matcher agrees: one of the two matches it
        pairs = [(texts[i], [s], []) for i, s in confirm] + [(items[i]["completion"], [s], []) for i, s in confirm]
        res2 = _check(pairs, timeout_s, dialect)
        for k, (i, _) in enumerate(confirm):
            if res2[k].positives_ok != res2[k + len(confirm)].positives_ok:
                distinguished[i] += 1
    compiled_idx = [i for i, (t, r) in enumerate(zip(texts, results, strict=True)) if t and r.compiled]
    findings = dict(zip(compiled_idx, _redos([texts[i] for i in compiled_idx], dialect, redos_timeout_s),
                        strict=True))
    rows = []
    for i, (it, text, res, nt, ms) in enumerate(zip(items, texts, results, n_tokens, latency, strict=True)):
        ok = bool(text) and res.all_ok(len(it["positives"]), len(it["negatives"])) and not distinguished[i]
        rows.append({
            "example_id": it["example_id"], "topic": it.get("topic") or "unknown", "prompt": it["prompt"],
            "reference": it["completion"], "output": text, "compiled": bool(res.compiled and text),
            "timed_out": bool(res.timed_out), "semantic_ok": ok, "exact": text == it["completion"],
            "equivalence": "different" if distinguished[i] else verdicts[i], "n_distinguishing": distinguished[i],
            "redos": findings.get(i) or ("match timed out" if res.timed_out else None), "output_tokens": int(nt),
            "latency_ms": round(float(ms), 3), "excluded": False,
        })
    return rows


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


def _rate(k: int, n: int) -> float:
    return round(k / n, 4) if n else 0.0


def summarise(rows: list[dict], *, generate_seconds: float | None = None, parity: dict | None = None) -> dict:
    """The metrics object M from per-item rows (excluded rows count only in ``n_excluded``)."""
    scored = [r for r in rows if not r.get("excluded")]
    n = len(scored)
    k = sum(r["semantic_ok"] for r in scored)
    tokens = [r["output_tokens"] for r in scored]
    latency = [r["latency_ms"] for r in scored]
    by_topic: dict[str, list[dict]] = defaultdict(list)
    for r in scored:
        by_topic[r["topic"]].append(r)
    eq = [r["equivalence"] for r in scored]
    n_undecided = eq.count("undecided")
    return {
        "n": n, "n_excluded": len(rows) - n,
        "compile_rate": _rate(sum(r["compiled"] for r in scored), n),
        "compile_rate_ci": wilson(sum(r["compiled"] for r in scored), n),
        "semantic_accuracy": _rate(k, n), "semantic_accuracy_ci": wilson(k, n),
        "exact_match": _rate(sum(r["exact"] for r in scored), n),
        "exact_match_ci": wilson(sum(r["exact"] for r in scored), n),
        "mean_output_tokens": round(sum(tokens) / n, 2) if n else 0.0,
        "p95_output_tokens": _pct([float(t) for t in tokens], 0.95),
        "latency_ms_p50": _pct(latency, 0.5), "latency_ms_p95": _pct(latency, 0.95),
        "tokens_per_s": round(sum(tokens) / generate_seconds, 1) if generate_seconds else None,
        "redos_vulnerable_rate": _rate(sum(r["redos"] is not None for r in scored), n),
        "redos_vulnerable_rate_ci": wilson(sum(r["redos"] is not None for r in scored), n),
        # a lower bound: undecided items (DFA too large or not regular in time) count as not equivalent
        "dfa_equivalence_rate": _rate(eq.count("equivalent"), n),
        "dfa_equivalence_rate_ci": wilson(eq.count("equivalent"), n), "dfa_undecided": n_undecided,
        "serving_parity": parity,
        "by_topic": {
            t: {"n": len(rs), "semantic_accuracy": _rate(sum(r["semantic_ok"] for r in rs), len(rs)),
                "semantic_accuracy_ci": wilson(sum(r["semantic_ok"] for r in rs), len(rs)),
                "compile_rate": _rate(sum(r["compiled"] for r in rs), len(rs))}
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
    rows = score(allitems, gen["texts"], gen["n_tokens"], gen["latency"], timeout_s=cfg.validation.match_timeout_s,
                 dialect=cfg.task.dialect, equivalence_timeout_s=cfg.eval.equivalence_timeout_s,
                 redos_timeout_s=cfg.eval.redos_timeout_s) if allitems else []
    out, start = {}, 0
    for s in sets:
        part = rows[start:start + len(sets[s])]
        start += len(sets[s])
        # a set's share of the generation time, by item count (length-sorted batches mix the sets)
        secs = gen["generate_seconds"] * len(part) / len(allitems) if allitems else None
        part = part + excluded_rows(excluded.get(s, []))
        out[s] = (summarise(part, generate_seconds=secs, parity=gen["parity"]) | {"base_precision":
                                                                                  gen["base_precision"]}, part)
    return out


def evaluate_model(base_model: str, adapter_dir: str | None, items: list[dict], cfg: DomainConfig, *,
                   excluded: list[dict] | None = None, progress=None) -> tuple[dict, list[dict]]:
    """Generate for every item and score: ``(M, rows)``; excluded items count in ``n_excluded``."""
    return evaluate_sets(base_model, adapter_dir, {"items": items}, cfg, excluded={"items": excluded or []},
                         progress=progress)["items"]
