"""Validation and snapshot stages: raw teacher responses → examples / quarantine → a frozen dataset.

Every planned request ends in a stated place: ``accepted`` (an example), ``quarantined`` (with reason
codes) or ``failed`` (the teacher never answered after retries). Validation reads only the cache, so a
validator change re-derives the examples with zero teacher calls.
"""

from __future__ import annotations

import json

import pyarrow as pa
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows._common import run_config
from schemas.config import DomainConfig
from schemas.run import Home
from tasks import dataset, focus, storage, store
from tasks.kinds import get_kind
from tasks.validate import load_eval_items, quality_markdown, quality_report, validation_tables


@task(name="validate-batch", cache_policy=NO_CACHE, tags=["validate"])
def validate_batch(cfg: DomainConfig, run_id: str, planned: list[dict], calls: dict[str, dict],
                   extra_eval_items: list[dict] | None = None) -> dict:
    """Validate, dedup and decontaminate the run's cached responses into run_requests/examples/quarantine tables."""
    return validation_tables(cfg, run_id, planned, calls, eval_items=load_eval_items(cfg) + (extra_eval_items or []))


def _champion_rows(h: Home, dataset_id: str | None, splits: tuple[str, ...]) -> list[pa.Table]:
    ds = store.get_dataset(h.db, dataset_id) if dataset_id else None
    return [dataset.read_split(ds["path"], s) for s in splits] if ds else []


def focus_eval_items(h: Home, cfg: DomainConfig, plan: dict | None) -> list[dict]:
    """A focused run keeps out of training what the champion is measured on besides the golden set: its failing
    items and its held-out split (tasks/focus.py)."""
    if plan is None:
        return []
    held_out = [r for t in _champion_rows(h, plan["dataset_id"], ("test",)) for r in dataset.item_rows(t)]
    return focus.decontamination_items(plan["report"], get_kind(cfg.task.kind), held_out)


@flow(name="validate-examples", log_prints=True)
def validate_examples(run_id: str, home: str | None = None) -> dict:
    """Validate every cached response of the run, record where each request ended, report data quality."""
    h = Home.from_env(home)
    cfg = run_config(h, run_id)
    planned = store.planned_requests(h.db, run_id)
    calls = store.load_teacher_calls(h.db, [p["request_hash"] for p in planned])
    plan = store.focus_plan(h.db, run_id) if cfg.dataset.focus == "failures" else None
    tables = validate_batch(cfg, run_id, planned, calls, focus_eval_items(h, cfg, plan))
    store.record_validation(h.db, tables["run_requests"], tables["examples"], tables["quarantine"])
    counts = store.run_counts(h.db, run_id)
    quality = quality_report(store.run_request_outcomes(h.db, run_id), store.run_examples(h.db, run_id).to_pylist(),
                             get_kind(cfg.task.kind))
    create_table_artifact(key="validation", table=[counts["counts"]], description=f"Request outcomes, run {run_id}")
    reasons = [{"reason": k, "rows": v} for k, v in quality["reasons"].items()] or [{"reason": "(none)", "rows": 0}]
    create_table_artifact(key="quality-reasons", table=reasons, description=f"Quarantine reasons, run {run_id}")
    create_markdown_artifact(key="data-quality", markdown=quality_markdown(quality, run_id),
                             description=f"Data quality, run {run_id}")
    print(f"validation: {json.dumps(counts)} acceptance {quality['acceptance_rate']:.1%}")
    return {**counts, "quality": quality}


@flow(name="snapshot-dataset", log_prints=True)
def snapshot_dataset(run_id: str, home: str | None = None) -> dict:
    """Freeze the run's accepted examples as a content-addressed Parquet snapshot (a focused run's: with the
    champion's examples, ``dataset.focus_train: union``; its manifest's ``lineage`` says which)."""
    h = Home.from_env(home)
    cfg = run_config(h, run_id)
    examples, lineage = store.run_examples(h.db, run_id), None
    plan = store.focus_plan(h.db, run_id) if cfg.dataset.focus == "failures" else None
    if plan is not None:  # a focused run: the champion's examples + the new ones, or the new ones alone
        how = cfg.dataset.focus_train
        ids = [i for t in _champion_rows(h, plan["dataset_id"], dataset.SPLITS) for i in t["example_id"].to_pylist()]
        parent = store.examples_by_id(h.db, ids) if how == "union" and ids else None
        examples, lineage = focus.training_examples(examples, parent, how, plan)
    manifest = dataset.write_snapshot(examples, cfg.name, h.datasets, lineage=lineage,
                                      storage_url=storage.storage_url(cfg))  # + an fsspec URL when configured
    store.record_dataset(h.db, {
        "dataset_id": manifest["dataset_id"], "domain": cfg.name, "run_id": run_id, "path": manifest["path"],
        "n_train": manifest["counts"]["train"], "n_val": manifest["counts"]["val"],
        "n_test": manifest["counts"]["test"], "manifest_json": json.dumps(manifest),
    })
    print(f"snapshot: {manifest['dataset_id']} {manifest['counts']}")
    return manifest
