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
from schemas.example import content_hash
from schemas.run import Home
from tasks import dataset, store
from tasks.kinds.regex import VALIDATOR_VERSION
from tasks.validate import example_id_of, split_of, validate_rows


@task(name="validate-batch", cache_policy=NO_CACHE, tags=["validate"])
def validate_batch(cfg: DomainConfig, run_id: str, planned: list[dict], calls: dict[str, dict]) -> dict:
    """Validate the run's cached responses; returns Arrow tables for run_requests, examples and quarantine."""
    ok = [p for p in planned if calls.get(p["request_hash"], {}).get("status") == "ok"]
    verdicts = dict(zip([p["request_hash"] for p in ok],
                        validate_rows([calls[p["request_hash"]]["raw_response"] for p in ok], cfg), strict=True))
    outcomes, examples, quarantine = [], [], []
    ts = store.now()
    teacher = cfg.teacher.provider
    for p in planned:
        h = p["request_hash"]
        row = {"run_id": run_id, "request_hash": h, "idx": p["idx"], "topic": p["topic"], "example_id": None}
        v = verdicts.get(h)
        if v is None:
            outcomes.append({**row, "outcome": "failed", "reasons": ["teacher_failed"]})
        elif v.accepted:
            eid = example_id_of(cfg.name, v.prompt, v.completion)
            outcomes.append({**row, "outcome": "accepted", "example_id": eid, "reasons": []})
            examples.append({
                "example_id": eid, "domain": cfg.name, "prompt": v.prompt, "completion": v.completion,
                "description": v.output.description, "positives": v.output.positives,
                "negatives": v.output.negatives, "topic": p["topic"], "run_id": run_id, "teacher": teacher,
                "request_hash": h, "seed": cfg.seed, "validator_version": VALIDATOR_VERSION,
                "split": split_of(eid, cfg), "created_at": ts,
            })
        else:
            outcomes.append({**row, "outcome": "quarantined", "reasons": v.reasons})
            quarantine.append({
                "quarantine_id": content_hash("quarantine", cfg.name, h, VALIDATOR_VERSION, n=20),
                "domain": cfg.name, "run_id": run_id, "request_hash": h, "reasons": v.reasons,
                "raw_output": calls[h]["raw_response"], "description": v.output.description if v.output else None,
                "completion": v.completion or None, "validator_version": VALIDATOR_VERSION, "created_at": ts,
            })
    return {"run_requests": pa.Table.from_pylist(outcomes), "examples": pa.Table.from_pylist(examples),
            "quarantine": pa.Table.from_pylist(quarantine)}


@flow(name="validate-examples", log_prints=True)
def validate_examples(run_id: str, home: str | None = None) -> dict:
    """Validate every cached response of the run and record where each request ended."""
    h = Home.from_env(home)
    cfg = run_config(h, run_id)
    planned = store.planned_requests(h.db, run_id)
    calls = store.load_teacher_calls(h.db, [p["request_hash"] for p in planned])
    tables = validate_batch(cfg, run_id, planned, calls)
    store.record_validation(h.db, tables["run_requests"], tables["examples"], tables["quarantine"])
    counts = store.run_counts(h.db, run_id)
    create_table_artifact(key="validation", table=[counts["counts"]], description=f"Request outcomes, run {run_id}")
    reasons = "\n".join(f"| {k} | {v} |" for k, v in counts["quarantine_reasons"].items()) or "| (none) | 0 |"
    create_markdown_artifact(key="quarantine-reasons", markdown=f"| reason | rows |\n|---|---|\n{reasons}\n")
    print(f"validation: {json.dumps(counts)}")
    return counts


@flow(name="snapshot-dataset", log_prints=True)
def snapshot_dataset(run_id: str, home: str | None = None) -> dict:
    """Freeze the run's accepted examples as a content-addressed Parquet snapshot."""
    h = Home.from_env(home)
    cfg = run_config(h, run_id)
    manifest = dataset.write_snapshot(store.run_examples(h.db, run_id), cfg.name, h.datasets)
    store.record_dataset(h.db, {
        "dataset_id": manifest["dataset_id"], "domain": cfg.name, "run_id": run_id, "path": manifest["path"],
        "n_train": manifest["counts"]["train"], "n_val": manifest["counts"]["val"],
        "n_test": manifest["counts"]["test"], "manifest_json": json.dumps(manifest),
    })
    print(f"snapshot: {manifest['dataset_id']} {manifest['counts']}")
    return manifest
