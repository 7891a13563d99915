"""Evaluation stage: base model, candidate and champion scored on the same items.

Evaluation sets: a deterministic sample (``eval.n_test``) of the snapshot's held-out test split and the
hand-written golden set ``configs/golden/<domain>.jsonl``. Items overlapping the candidate's or the champion's
training data (and, in a focused run, the failure items it was built from) are excluded for all three models
alike and counted in ``n_excluded``. Every (model, set) is one
``evaluations`` row with its per-item rows in ``evaluation_items``, so every figure traces back to rows; a model
whose results on the very same items and settings are already stored (the base model, an unchanged champion)
is not generated again — its rows are copied under this run's evaluation id.

``evaluate_file`` is ``loraforge evaluate --eval-file``: one model on a user's JSONL.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows._common import progress_bar, run_config
from schemas.config import DomainConfig, load_domain
from schemas.example import content_hash
from schemas.run import Home
from tasks import dataset, focus, registry, store
from tasks import evaluate as ev
from tasks.kinds import get_kind
from tasks.student import resolve_base_model

# evaluation_items: the generic columns, and the kind's own per-item values as JSON (kind_json)
ITEM_COLUMNS = {"eval_id": pa.string(), "example_id": pa.string(), "topic": pa.string(), "prompt": pa.string(),
                "reference": pa.string(), "output": pa.string(), "timed_out": pa.bool_(), "semantic_ok": pa.bool_(),
                "exact": pa.bool_(), "output_tokens": pa.int32(), "latency_ms": pa.float64(), "excluded": pa.bool_(),
                "kind_json": pa.string(), "labels_json": pa.string(), "item_json": pa.string()}
_JSON_COLUMNS = {"kind_json": None, "labels_json": "labels", "item_json": "item"}  # column → a scored row's key


def _train_rows(db: Path, dataset_id: str | None) -> list[dict]:
    ds = store.get_dataset(db, dataset_id) if dataset_id else None
    if ds is None:
        return []
    return dataset.read_split(ds["path"], "train").select(["prompt", "completion"]).to_pylist()


def eval_sets(h: Home, cfg: DomainConfig, dataset_id: str | None, exclude_from: list[str | None],
              mined: frozenset[str] = frozenset()) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """(kept, excluded) items per set: ``test`` (deterministic sample of the test split) and ``golden``.

    ``mined``: normalised prompts of the failure items a focused run was built from; the champion failed them by
    selection, so they are excluded too (a comparison on them would favour any candidate)."""
    kind = get_kind(cfg.task.kind)
    test = []
    if dataset_id:
        rows = dataset.item_rows(dataset.read_split(store.get_dataset(h.db, dataset_id)["path"], "test"))
        test = ev.sample_items(rows, cfg.eval.n_test, cfg.eval.sample_seed)
        unlabelled = [r["example_id"] for r in test if "labels" not in r]  # a snapshot from before slice labels
        if unlabelled:
            labels = store.example_labels(h.db, unlabelled)
            for r in test:
                r.setdefault("labels", labels.get(r["example_id"]))
    prompts: set[str] = set(mined)
    answers: set[str] = set()
    for ds_id in sorted({d for d in exclude_from if d}):
        p, a = ev.training_keys(_train_rows(h.db, ds_id), kind)
        prompts |= p
        answers |= a
    kept, excluded = {}, {}
    for name, items in (("test", test), ("golden", ev.golden_items(cfg))):
        kept[name], excluded[name] = ev.split_overlap(items, (prompts, answers), kind)
    return kept, excluded


def _weights_signature(adapter_dir: str | None) -> str:
    if not adapter_dir:
        return ""
    files = sorted(Path(adapter_dir).glob("adapter_model.*"))
    return ";".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)


def cache_key(cfg: DomainConfig, ref: str, base_model: str, adapter_dir: str | None, kept: list[dict],
              excluded: list[dict], quantization: dict | None = None) -> str:
    """Same model weights (base precision included) + same items + same generation and scoring settings ⇒ same
    results."""
    kind = get_kind(cfg.task.kind)
    return content_hash(ev.EVAL_VERSION, ref, base_model, _weights_signature(adapter_dir),
                        ev.items_signature(kept, kind), sorted(it["example_id"] for it in excluded), kind.name,
                        cfg.eval.batch_size, cfg.eval.max_new_tokens, cfg.eval.parity_n,
                        cfg.validation.match_timeout_s, kind.validator_version, *kind.eval_settings(cfg),
                        *([quantization] if quantization else []), n=20)


@task(name="score-model", cache_policy=NO_CACHE, tags=["evaluate"], retries=0)
def score_model(cfg: DomainConfig, base_model: str, adapter_dir: str | None, sets: dict[str, list[dict]],
                excluded: dict[str, list[dict]], label: str,
                quantization: dict | None = None) -> dict[str, tuple[dict, list[dict]]]:
    """Generate with one model (adapter merged, batched greedy) for every item and score the outputs."""
    with progress_bar(f"evaluate {label}", sum(len(v) for v in sets.values())) as advance:
        return ev.evaluate_sets(base_model, adapter_dir, sets, cfg, excluded=excluded, progress=advance,
                                quantization=quantization)


def _items_table(eval_id: str, rows: list[dict]) -> pa.Table:
    """Rows as ``evaluation_items``: the generic values as columns, the kind's own (every other key of a scored
    row) as ``kind_json``, the item's slice labels and reference fields as ``labels_json`` / ``item_json``; a row
    read back from the store already carries those columns."""
    def as_json(r: dict, column: str) -> str | None:
        if column in r:
            return r[column]
        if _JSON_COLUMNS[column]:
            value = r.get(_JSON_COLUMNS[column])
        else:
            value = {k: v for k, v in r.items() if k not in ev.GENERIC_ROW_KEYS}
        return json.dumps(value) if value else None

    cols = {k: [r.get(k) for r in rows] for k in ITEM_COLUMNS if k != "eval_id" and k not in _JSON_COLUMNS}
    return pa.table({"eval_id": [eval_id] * len(rows), **cols,
                     **{c: [as_json(r, c) for r in rows] for c in _JSON_COLUMNS}}, schema=pa.schema(ITEM_COLUMNS))


def evaluate_role(h: Home, cfg: DomainConfig, *, run_id: str | None, role: str, ref: str, base_model: str,
                  adapter_dir: str | None, dataset_id: str | None, sets: dict[str, list[dict]],
                  excluded: dict[str, list[dict]], id_parts: tuple = (),
                  quantization: dict | None = None) -> dict[str, dict]:
    """Score one model on every set (from the cache where possible), record each set; ``{set: M}``.

    The base is loaded as the adapter was trained (``quantization``, default: the adapter's manifest)."""
    quantization = quantization if quantization is not None else ev.trained_quantization(adapter_dir)
    keys = {s: cache_key(cfg, ref, base_model, adapter_dir, sets[s], excluded.get(s, []), quantization) for s in sets}
    results: dict[str, tuple[dict, list[dict], bool]] = {}
    for s in sets:
        hit = store.cached_evaluation(h.db, keys[s]) if cfg.eval.cache else None
        if hit:
            results[s] = (json.loads(hit[0]["metrics_json"]), hit[1], True)
    todo = [s for s in sets if s not in results]
    if todo:
        fresh = score_model(cfg, base_model, adapter_dir, {s: sets[s] for s in todo},
                            {s: excluded.get(s, []) for s in todo}, role, quantization)
        results |= {s: (m, rows, False) for s, (m, rows) in fresh.items()}
    out = {}
    for s, (m, rows, cached) in results.items():
        eval_id = "ev-" + content_hash("eval", run_id, ref, role, dataset_id, s, *id_parts)
        m = {k: v for k, v in m.items() if k not in ("eval_id", "eval_set", "model_ref", "cached", "golden")}
        m |= {"eval_id": eval_id, "eval_set": s, "model_ref": ref, "cached": cached}
        store.save_evaluation(h.db, {"eval_id": eval_id, "run_id": run_id, "domain": cfg.name, "model_ref": ref,
                                     "role": role, "dataset_id": dataset_id, "eval_set": s,
                                     "metrics_json": json.dumps(m), "cache_key": keys[s]}, _items_table(eval_id, rows))
        out[s] = m
    return out


def headline(per_set: dict[str, dict], cfg: DomainConfig) -> dict:
    """The role's M: the test set's figures, with the golden set's M nested under ``golden``."""
    m = dict(per_set.get("test") or ev.summarise([], kind=get_kind(cfg.task.kind)))
    m["golden"] = per_set.get("golden")
    return m


@flow(name="evaluate-adapter", log_prints=True)
def evaluate_adapter(run_id: str, adapter_id: str, home: str | None = None) -> dict:
    """Score base model, candidate adapter and current champion on the same held-out and golden items.

    Args:
        run_id: The stored run whose test split is used (see `loraforge runs ls`).
        adapter_id: The candidate adapter (see `loraforge adapters ls`).
        home: State directory (default: $LORAFORGE_HOME, else ./.loraforge on the worker).
    """
    h = Home.from_env(home)
    cfg = run_config(h, run_id)
    cand = store.get_adapter(h.db, adapter_id)
    if cand is None:
        raise ValueError(f"unknown adapter {adapter_id!r}; see `loraforge adapters ls`")
    registry.reconcile(h.db, h.adapters, cfg.name)
    champ = registry.champion(h.db, cfg.name, adapter_id)
    fplan = store.focus_plan(h.db, run_id) if cfg.dataset.focus == "failures" else None
    sets, excluded = eval_sets(h, cfg, cand["dataset_id"], [cand["dataset_id"], champ["dataset_id"] if champ else None],
                               mined=focus.mined_prompts(fplan))
    # each adapter on the base it was trained on (NF4 for a QLoRA adapter); the base model as the candidate's base
    trained = ev.trained_quantization(cand["path"])
    models = [("base", "base:" + cand["base_model"], cand["base_model"], None, trained),
              ("candidate", adapter_id, cand["base_model"], cand["path"], trained)]
    if champ:
        models.append(("champion", champ["adapter_id"], champ["base_model"], champ["path"], None))
    results: dict[str, dict | None] = {"base": None, "candidate": None, "champion": None}
    for role, ref, base, adir, quant in models:
        per_set = evaluate_role(h, cfg, run_id=run_id, role=role, ref=ref, base_model=base, adapter_dir=adir,
                                dataset_id=cand["dataset_id"], sets=sets, excluded=excluded, quantization=quant)
        results[role] = headline(per_set, cfg)
    store.set_adapter_metrics(h.db, adapter_id, results["candidate"])
    kind = get_kind(cfg.task.kind)
    table = []
    for role, m in results.items():
        for s, mm in ((s, m if s == "test" else m.get("golden")) for s in ("test", "golden")) if m else ():
            if mm and mm["n"]:
                table.append({"model": role, "set": s, **{k: mm.get(k) for k in (
                    "n", "n_excluded", "semantic_accuracy", "semantic_accuracy_ci", "exact_match", *kind.metric_keys,
                    *kind.count_keys, "mean_output_tokens", "latency_ms_p50", "latency_ms_p95", "tokens_per_s",
                    "cached")}, "base_precision": mm.get("base_precision")})
    create_table_artifact(key="evaluation", table=table, description=(
        f"Evaluation of {adapter_id}: {len(sets['test'])} test + {len(sets['golden'])} golden items"
        f" ({sum(map(len, excluded.values()))} excluded for overlapping training data)"))
    print("evaluation: " + ", ".join(f"{r} semantic {m['semantic_accuracy']:.3f}" for r, m in results.items() if m))
    return results


def resolve_model(h: Home, cfg: DomainConfig, adapter: str) -> dict:
    """``base`` | ``promoted`` | an adapter id → ``{"ref", "base_model", "path", "dataset_id"}``."""
    if adapter == "base":
        base = resolve_base_model(cfg.training.base_model, h.models)
        return {"ref": "base:" + base, "base_model": base, "path": None, "dataset_id": None}
    if adapter == "promoted":
        registry.reconcile(h.db, h.adapters, cfg.name)
        row = store.promoted_adapter(h.db, cfg.name)
        if row is None:
            raise registry.RegistryError(f"domain {cfg.name!r} has no promoted adapter (see `loraforge adapters ls`)")
    else:
        row = store.get_adapter(h.db, adapter)
        if row is None:
            raise registry.RegistryError(f"unknown adapter {adapter!r}; see `loraforge adapters ls`")
        if row["domain"] != cfg.name:
            raise registry.RegistryError(f"adapter {adapter!r} belongs to domain {row['domain']!r}, not {cfg.name!r}")
    return {"ref": row["adapter_id"], "base_model": row["base_model"], "path": row["path"],
            "dataset_id": row["dataset_id"]}


@flow(name="evaluate-file", log_prints=True)
def evaluate_file(domain: str, adapter: str, eval_file: str, home: str | None = None) -> dict:
    """Score one model (an adapter id, ``promoted`` or ``base``) on a user's JSONL; returns M."""
    h = Home.from_env(home)
    cfg = load_domain(domain, "full")
    model = resolve_model(h, cfg, adapter)
    kind = get_kind(cfg.task.kind)
    items, invalid = ev.read_items_file(eval_file, cfg.task.prompt_template, "line", kind)
    kept, excl = ev.split_overlap(items, ev.training_keys(_train_rows(h.db, model["dataset_id"]), kind), kind)
    file_hash = hashlib.sha256(Path(eval_file).read_bytes()).hexdigest()[:16]
    per_set = evaluate_role(h, cfg, run_id=None, role="file", ref=model["ref"], base_model=model["base_model"],
                            adapter_dir=model["path"], dataset_id=model["dataset_id"], sets={"file": kept},
                            excluded={"file": excl}, id_parts=(file_hash,))
    m = per_set["file"] | {"n_invalid": len(invalid), "invalid_lines": invalid[:100], "model_ref": model["ref"],
                           "eval_file": str(eval_file)}
    create_table_artifact(key="evaluation-file", description=f"{model['ref']} on {eval_file}", table=[
        {k: v for k, v in m.items() if not isinstance(v, (dict, list))}])
    return m
