"""Evaluation stage: base model, candidate and champion scored on the same held-out items.

Items come from the snapshot's test split (a deterministic sample of ``eval.n_test``); items whose prompt
is in the candidate's or the champion's training data are excluded and counted in ``n_excluded``.
Per-item outputs land in ``evaluation_items`` so every figure traces back to rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows._common import progress_bar, run_config
from schemas.config import DomainConfig
from schemas.example import content_hash
from schemas.run import Home
from tasks import dataset, store
from tasks.evaluate import evaluate_model
from tasks.registry import champion
from tasks.validate import prompt_key


def _train_prompts(db: Path, dataset_id: str | None) -> set[str]:
    ds = store.get_dataset(db, dataset_id) if dataset_id else None
    if ds is None:
        return set()
    return {prompt_key(p) for p in dataset.read_split(ds["path"], "train")["prompt"].to_pylist()}


def eval_items(h: Home, dataset_id: str, n: int, exclude_from: list[str | None]) -> tuple[list[dict], int]:
    """The deterministic evaluation sample and how many items were excluded for overlapping training data."""
    test = dataset.read_split(store.get_dataset(h.db, dataset_id)["path"], "test").to_pylist()
    seen: set[str] = set()
    for ds_id in set(exclude_from):
        seen |= _train_prompts(h.db, ds_id)
    sample = test[:n]
    kept = [it for it in sample if prompt_key(it["prompt"]) not in seen]
    return kept, len(sample) - len(kept)


@task(name="score-model", cache_policy=NO_CACHE, tags=["evaluate"])
def score_model(cfg: DomainConfig, base_model: str, adapter_dir: str | None, items: list[dict],
                n_excluded: int, label: str) -> tuple[dict, list[dict]]:
    """Generate with one model (adapter merged) for every item and score the outputs."""
    with progress_bar(f"evaluate {label}", len(items)) as advance:
        return evaluate_model(base_model, adapter_dir, items, batch_size=cfg.eval.batch_size,
                              max_new_tokens=cfg.eval.max_new_tokens, timeout_s=cfg.validation.match_timeout_s,
                              n_excluded=n_excluded, progress=advance)


def _record(h: Home, run_id: str, cfg: DomainConfig, dataset_id: str, ref: str, role: str, metrics: dict,
            rows: list[dict]) -> None:
    eval_id = "ev-" + content_hash("eval", run_id, ref, role, dataset_id)
    store.record_evaluation(h.db, {
        "eval_id": eval_id, "run_id": run_id, "domain": cfg.name, "model_ref": ref, "role": role,
        "dataset_id": dataset_id, "eval_set": "test", "metrics_json": json.dumps(metrics),
    }, pa.Table.from_pylist([{"eval_id": eval_id, **r} for r in rows]))


@flow(name="evaluate-adapter", log_prints=True)
def evaluate_adapter(run_id: str, adapter_id: str, home: str | None = None) -> dict:
    """Score base model, candidate adapter and current champion on the run's held-out test items."""
    h = Home.from_env(home)
    cfg = run_config(h, run_id)
    cand = store.get_adapter(h.db, adapter_id)
    champ = champion(h.db, cfg.name, adapter_id)
    items, n_excluded = eval_items(h, cand["dataset_id"], cfg.eval.n_test,
                                   [cand["dataset_id"], champ["dataset_id"] if champ else None])
    results: dict[str, dict | None] = {"base": None, "candidate": None, "champion": None}
    for role, ref, base, adir in [("base", "base:" + cand["base_model"], cand["base_model"], None),
                                  ("candidate", adapter_id, cand["base_model"], cand["path"]),
                                  *([("champion", champ["adapter_id"], champ["base_model"], champ["path"])]
                                    if champ else [])]:
        metrics, rows = score_model(cfg, base, adir, items, n_excluded, role)
        _record(h, run_id, cfg, cand["dataset_id"], ref, role, metrics, rows)
        results[role] = metrics
    store.set_adapter_metrics(h.db, adapter_id, results["candidate"])
    create_table_artifact(key="evaluation", description=f"Evaluation of {adapter_id} on {len(items)} test items",
                          table=[{"model": r, **{k: v for k, v in m.items() if k != "by_topic"}}
                                 for r, m in results.items() if m])
    print("evaluation: " + ", ".join(f"{r} semantic {m['semantic_accuracy']:.3f}" for r, m in results.items() if m))
    return results
