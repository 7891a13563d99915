"""The one top flow: distill a teacher into a promoted (or rejected) LoRA adapter for a domain.

It only composes the stage flows, in this order:
generate → validate → snapshot → train → evaluate → gate-and-promote.
Each stage is a flow of its own that reads what DuckDB already holds, so any of them can be rerun alone.
"""

from __future__ import annotations

import json
import time
import traceback
import uuid
from contextlib import ExitStack
from typing import Any, Literal

from prefect import flow

from flows._common import (
    StageRangeEnd,
    compact_result,
    domain_lock,
    plan_run,
    prepare_run,
    reused_output,
    with_task_runner,
)
from flows.evaluate import evaluate_adapter
from flows.generate import BudgetExhausted, generate_examples
from flows.promote import gate_and_promote
from flows.train import run_training_deployment, train_adapter
from flows.validate import snapshot_dataset, validate_examples
from schemas.config import DEFAULT_DOMAIN, DomainName, Profile
from schemas.example import content_hash
from schemas.run import Counts, Home, RunSummary
from tasks import storage, store
from tasks.student import resolve_base_model

Stage = Literal["generate", "validate", "snapshot", "train", "evaluate", "promote"]


def new_run_id(domain: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{domain}-{uuid.uuid4().hex[:6]}"


def focus_plan(h: Home, cfg, run_id: str, plan) -> dict | None:
    """A focused run's plan (``dataset.focus: failures``): the one recorded for it or the run it reruns, else the
    champion's failure report now (the ``failure-report`` flow, its artifact), recorded in ``focus_plans``."""
    if cfg.dataset.focus != "failures":
        return None
    recorded = store.focus_plan(h.db, run_id)
    if recorded is not None or plan.reuses("generate"):
        return recorded
    from flows.failures import failure_report

    t0, started = time.perf_counter(), store.now()
    report = failure_report(cfg.name, home=str(h.root))
    store.record_focus_plan(h.db, {"run_id": run_id, "domain": cfg.name, "adapter_id": report["adapter_id"],
                                   "dataset_id": report["dataset_id"], "report_json": json.dumps(report)})
    store.record_stage(h.db, run_id, "failures", "completed", seconds=round(time.perf_counter() - t0, 2),
                       started_at=started, result={k: report[k] for k in ("adapter_id", "n", "failed", "rate")}
                       | {"targeted": len(report["targeted"])})
    return store.focus_plan(h.db, run_id)


@flow(name="distill-to-adapter", log_prints=True)
def distill_to_adapter(domain: DomainName = DEFAULT_DOMAIN, profile: Profile = "full",
                       teacher: Literal["grammar", "openai"] | None = None, run_id: str | None = None,
                       overrides: dict[str, Any] | None = None, home: str | None = None,
                       parent_run_id: str | None = None, from_stage: Stage = "generate",
                       to_stage: Stage = "promote", focus: Literal["none", "failures"] = "none") -> dict:
    """Distill examples from the teacher, train a LoRA student, evaluate it and promote it if the gate agrees.

    Rerun: with ``parent_run_id`` a new run reuses what that run stored before ``from_stage`` (teacher cache,
    request outcomes, snapshot, adapter, evaluations), applies ``overrides`` to its config and runs the rest.
    Continue: with the id of a stored run, it runs that run's stages ``from_stage``..``to_stage`` (the CLI's
    stage commands). One run per domain at a time: a second one waits for the domain lock.

    Args:
        domain: The domain to distill: a file under configs/domains/.
        profile: tiny (tests: 300 requests, 8 steps), quick (1,000 requests) or full (30,000).
        teacher: Overrides the domain's teacher: grammar (offline) or openai (any OpenAI-compatible URL).
        run_id: Id of the new run (default: time-domain-random), or of a stored run to continue.
        overrides: Dotted config keys, e.g. {"training.train_on": "deployment", "dataset.n_requests": 500}.
        home: State directory (default: $LORAFORGE_HOME, else ./.loraforge on the worker).
        parent_run_id: Rerun: the stored run whose results before from_stage are reused.
        from_stage: The first stage to run.
        to_stage: The last stage to run.
        focus: failures: spend dataset.focus_share of the requests on where the champion fails (its failure
            report, recorded at the start) and train on the champion's examples plus the new ones.
    """
    h = Home.from_env(home)
    overrides = {**(overrides or {}), **({"teacher.provider": teacher} if teacher else {}),
                 **({"dataset.focus": "failures"} if focus == "failures" else {})}
    plan = plan_run(h, domain, profile, overrides, run_id=run_id, parent_run_id=parent_run_id,
                    from_stage=from_stage, to_stage=to_stage)
    cfg, domain, profile = plan.cfg, plan.cfg.name, plan.profile
    run_id = plan.run_id = plan.run_id or new_run_id(domain)
    seconds: dict[str, float] = {}
    summary = RunSummary(run_id=run_id, domain=domain, profile=profile, status="failed")
    t_run = time.perf_counter()

    def stage(name: str, fn, *args, **kwargs):
        """Run one stage and record it in ``run_stages``; a stage before ``from_stage`` returns what is stored."""
        if plan.beyond(name):
            raise StageRangeEnd(name)
        if plan.reuses(name):
            return reused_output(h, plan, name)
        t0, started = time.perf_counter(), store.now()
        try:
            result = fn(*args, **kwargs)
        except Exception as e:
            store.record_stage(h.db, run_id, name, "failed", seconds=round(time.perf_counter() - t0, 2),
                               error=f"{type(e).__name__}: {e}"[:2000], started_at=started)
            raise
        finally:
            seconds[name] = round(time.perf_counter() - t0, 2)
        store.record_stage(h.db, run_id, name, "completed", seconds=seconds[name], result=compact_result(result),
                           started_at=started)
        if name == "snapshot":
            store.set_run_outputs(h.db, run_id, dataset_id=result["dataset_id"])
        return result

    held = ExitStack()
    held.enter_context(domain_lock(h, domain, run_id))  # released in `finally` below
    try:
        prepare_run(h, plan)  # the run row; a rerun's copy of its parent's request outcomes
        focused = focus_plan(h, cfg, run_id, plan)  # a focused run: the champion's failure report, frozen
        gen = stage("generate", with_task_runner(generate_examples, cfg), run_id, home=str(h.root))  # teacher → cache
        counts = stage("validate", validate_examples, run_id, home=str(h.root))  # cache → examples | quarantine
        summary.counts, summary.quarantine_reasons = Counts(**counts["counts"]), counts["quarantine_reasons"]
        summary.quality = counts.get("quality")  # data-quality report (None when validation was reused)
        manifest = stage("snapshot", snapshot_dataset, run_id, home=str(h.root))  # examples → Parquet
        summary.dataset_id = manifest["dataset_id"]
        if isinstance(gen, dict) and gen.get("budget_exhausted") and not plan.reuses("generate"):
            raise BudgetExhausted(gen.get("budget_cap"))  # the cap stopped this generation: what it produced is
            #                                               validated and snapshotted; a rerun --from train uses it

        if plan.reuses("train"):  # a rerun from evaluate or promote keeps the parent's adapter
            adapter_id = reused_output(h, plan, "train")["adapter_id"]
        else:
            base_model = stage("student", resolve_base_model, cfg.training.base_model, h.models)
            adapter_id = "ad-" + content_hash("adapter", run_id, manifest["dataset_id"], n=12)
            adapter_dir = h.adapters / domain / adapter_id
            # snapshot → adapter files + metrics.json; on the gpu pool when training.train_on is "deployment"
            train = run_training_deployment if cfg.training.train_on == "deployment" else train_adapter
            training = cfg.training
            if focused and cfg.dataset.focus_train == "continue":  # from the champion's adapter weights
                training = training.model_copy(update={"init_adapter": store.get_adapter(
                    h.db, focused["adapter_id"])["path"]})
            stage("train", train, manifest["path"], domain, base_model, str(adapter_dir), profile, training)
            store.record_adapter(h.db, {
                "adapter_id": adapter_id, "domain": domain, "run_id": run_id, "dataset_id": manifest["dataset_id"],
                "base_model": base_model, "path": str(adapter_dir), "status": "candidate",
                "train_json": (adapter_dir / "metrics.json").read_text(),
            })
            store.set_run_outputs(h.db, run_id, adapter_id=adapter_id)
            if url := storage.storage_url(cfg):  # publish the adapter files to the configured fsspec URL too
                uri = storage.put_dir(adapter_dir, storage.join(url, "adapters", domain, adapter_id))
                store.set_adapter_uri(h.db, adapter_id, uri)
                store.record_stage(h.db, run_id, "publish", "completed", result={"adapter_uri": uri})
        row = store.get_adapter(h.db, adapter_id)
        summary.adapter.id, summary.adapter.status = adapter_id, row["status"]
        trained = json.loads(row.get("train_json") or "{}")
        summary.examples = {"distilled": summary.counts.accepted, "trained_on": trained.get("train_examples")}

        evals = stage("evaluate", evaluate_adapter, run_id, adapter_id, home=str(h.root))  # base/candidate/champion
        summary.eval = evals
        gate = stage("promote", gate_and_promote, run_id, adapter_id, evals["candidate"], evals["champion"],
                     home=str(h.root))                                          # gate → registry
        summary.adapter.status, summary.gate = gate["status"], gate
        summary.status = "completed"
    except BudgetExhausted:
        summary.status = "budget_exhausted"
    except StageRangeEnd:  # a stage command (`loraforge train --run ID`) stops after its last stage
        summary.status = "partial"
    except Exception as e:
        summary.error = f"{type(e).__name__}: {e}"
        traceback.print_exc()
        raise
    finally:
        summary.seconds = {"total": round(time.perf_counter() - t_run, 2), **seconds}
        store.finish_run(h.db, run_id, summary.status, summary.model_dump(mode="json"), summary.error)
        held.close()  # the domain lock
    return summary.model_dump(mode="json")
