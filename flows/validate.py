"""Validation and snapshot stages: raw teacher responses → examples / quarantine → a frozen dataset.

Every planned request ends in a stated place: ``accepted`` (an example), ``quarantined`` (with reason
codes) or ``failed`` (the teacher never answered after retries). Validation reads only the cache, so a
validator change re-derives the examples with zero teacher calls.
"""

from __future__ import annotations

import json

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows._common import run_config
from schemas.config import DomainConfig
from schemas.run import Home
from tasks import dataset, storage, store
from tasks.kinds import get_kind
from tasks.validate import load_eval_items, quality_markdown, quality_report, validation_tables


@task(name="validate-batch", cache_policy=NO_CACHE, tags=["validate"])
def validate_batch(cfg: DomainConfig, run_id: str, planned: list[dict], calls: dict[str, dict]) -> dict:
    """Validate, dedup and decontaminate the run's cached responses into run_requests/examples/quarantine tables."""
    return validation_tables(cfg, run_id, planned, calls, eval_items=load_eval_items(cfg))


@flow(name="validate-examples", log_prints=True)
def validate_examples(run_id: str, home: str | None = None) -> dict:
    """Validate every cached response of the run, record where each request ended, report data quality."""
    h = Home.from_env(home)
    cfg = run_config(h, run_id)
    planned = store.planned_requests(h.db, run_id)
    calls = store.load_teacher_calls(h.db, [p["request_hash"] for p in planned])
    tables = validate_batch(cfg, run_id, planned, calls)
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
    """Freeze the run's accepted examples as a content-addressed Parquet snapshot."""
    h = Home.from_env(home)
    cfg = run_config(h, run_id)
    manifest = dataset.write_snapshot(store.run_examples(h.db, run_id), cfg.name, h.datasets,
                                      storage_url=storage.storage_url(cfg))  # + an fsspec URL when configured
    store.record_dataset(h.db, {
        "dataset_id": manifest["dataset_id"], "domain": cfg.name, "run_id": run_id, "path": manifest["path"],
        "n_train": manifest["counts"]["train"], "n_val": manifest["counts"]["val"],
        "n_test": manifest["counts"]["test"], "manifest_json": json.dumps(manifest),
    })
    print(f"snapshot: {manifest['dataset_id']} {manifest['counts']}")
    return manifest
