"""The one top flow: distill a teacher into a promoted (or rejected) LoRA adapter for a domain.

It only composes the stage flows, in this order:
generate → validate → snapshot → train → evaluate → gate-and-promote.
Each stage is a flow of its own that reads what DuckDB already holds, so any of them can be rerun alone.
"""

from __future__ import annotations

import time
import traceback
import uuid
from typing import Any, Literal

from prefect import flow

from flows.evaluate import evaluate_adapter
from flows.generate import BudgetExhausted, generate_examples
from flows.promote import gate_and_promote
from flows.train import run_training_deployment, train_adapter
from flows.validate import snapshot_dataset, validate_examples
from schemas.config import DomainName, Profile, load_domain
from schemas.example import content_hash
from schemas.run import Counts, Home, RunSummary
from tasks import store
from tasks.student import resolve_base_model


def new_run_id(domain: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{domain}-{uuid.uuid4().hex[:6]}"


@flow(name="distill-to-adapter", log_prints=True)
def distill_to_adapter(domain: DomainName = "regex-python", profile: Profile = "full",
                       teacher: Literal["grammar", "openai"] | None = None, run_id: str | None = None,
                       overrides: dict[str, Any] | None = None, home: str | None = None) -> dict:
    """Distill examples from the teacher, train a LoRA student, evaluate it and promote it if the gate agrees."""
    h = Home.from_env(home)
    overrides = {**(overrides or {}), **({"teacher.provider": teacher} if teacher else {})}
    cfg = load_domain(domain, profile, overrides)
    run_id = run_id or new_run_id(domain)
    store.create_run(h.db, run_id, domain, profile, cfg.teacher.provider, cfg.model_dump(mode="json"))
    seconds: dict[str, float] = {}
    summary = RunSummary(run_id=run_id, domain=domain, profile=profile, status="failed")
    t_run = time.perf_counter()

    def stage(name: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[name] = round(time.perf_counter() - t0, 2)

    try:
        gen = stage("generate", generate_examples, run_id, home=str(h.root))    # teacher → raw cache
        counts = stage("validate", validate_examples, run_id, home=str(h.root))  # cache → examples | quarantine
        summary.counts, summary.quarantine_reasons = Counts(**counts["counts"]), counts["quarantine_reasons"]
        manifest = stage("snapshot", snapshot_dataset, run_id, home=str(h.root))  # examples → Parquet
        summary.dataset_id = manifest["dataset_id"]
        if isinstance(gen, dict) and gen.get("budget_exhausted"):  # the cap stopped generation: what was produced
            raise BudgetExhausted(gen.get("budget_cap"))           # is validated and snapshotted; no training

        base_model = stage("student", resolve_base_model, cfg.training.base_model, h.models)
        adapter_id = "ad-" + content_hash("adapter", run_id, manifest["dataset_id"], n=12)
        adapter_dir = h.adapters / domain / adapter_id
        # snapshot → adapter files + metrics.json; on the gpu pool when training.train_on is "deployment"
        train = run_training_deployment if cfg.training.train_on == "deployment" else train_adapter
        stage("train", train, manifest["path"], domain, base_model, str(adapter_dir), profile, cfg.training)
        store.record_adapter(h.db, {
            "adapter_id": adapter_id, "domain": domain, "run_id": run_id, "dataset_id": manifest["dataset_id"],
            "base_model": base_model, "path": str(adapter_dir), "status": "candidate",
            "train_json": (adapter_dir / "metrics.json").read_text(),
        })
        summary.adapter.id, summary.adapter.status = adapter_id, "candidate"

        evals = stage("evaluate", evaluate_adapter, run_id, adapter_id, home=str(h.root))  # base/candidate/champion
        summary.eval = evals
        gate = stage("promote", gate_and_promote, run_id, adapter_id, evals["candidate"], evals["champion"],
                     home=str(h.root))                                          # gate → registry
        summary.adapter.status, summary.gate = gate["status"], gate
        summary.status = "completed"
    except BudgetExhausted:
        summary.status = "budget_exhausted"
    except Exception as e:
        summary.error = f"{type(e).__name__}: {e}"
        traceback.print_exc()
        raise
    finally:
        summary.seconds = {"total": round(time.perf_counter() - t_run, 2), **seconds}
        store.finish_run(h.db, run_id, summary.status, summary.model_dump(mode="json"), summary.error)
    return summary.model_dump(mode="json")
