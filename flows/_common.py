"""Small helpers every flow shares: the run's stored config, progress bars, rerun plans and the domain lock."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from schemas.config import DomainConfig, load_domain, parse_domain, validate_config
from schemas.run import STAGES, Home
from tasks import store


def run_config(home: Home, run_id: str) -> DomainConfig:
    """The resolved config a run was started with (stages and reruns never re-read the YAML)."""
    row = store.get_run(home.db, run_id)
    if row is None:
        raise ValueError(f"unknown run {run_id!r}; see `loraforge runs ls`")
    return validate_config(json.loads(row["config_json"]))


@contextmanager
def progress_bar(description: str, total: int):
    """A rich progress bar on stderr (silent when stderr is not a terminal); yields ``advance(n)``."""
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, disable=not sys.stderr.isatty(), transient=False) as p:
        task = p.add_task(description, total=total)
        yield lambda n=1: p.advance(task, n)


# ------------------------------------------------------------------------------ runs, reruns, locks
class UnknownRunError(ValueError):
    """A run id that DuckDB does not hold."""


class StageRangeEnd(Exception):  # noqa: N818 - not an error: a stage command asked to stop here
    """Raised by the pipeline's stage wrapper at the first stage after ``to_stage``."""


def stage_index(stage: str) -> int:
    """Position of a stage in STAGES (``student`` belongs to ``train``)."""
    stage = "train" if stage == "student" else stage
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages in order: {', '.join(STAGES)}")
    return STAGES.index(stage)


def rerun_config(stored: dict, overrides: dict[str, Any], source: str) -> DomainConfig:
    """A parent run's resolved config with ``--set`` overrides applied (its profile is already in it)."""
    cfg = parse_domain({**stored, "profiles": {}}, source=source, overrides=overrides)
    return cfg.model_copy(update={"profiles": stored.get("profiles", {})})


@dataclass
class RunPlan:
    """Which stages a pipeline call runs, and whose stored outputs stand in for the stages before them.

    A fresh run runs everything. A rerun (``parent_run_id``) is a new run that takes the parent's stored
    outputs for the stages before ``from_stage`` (teacher cache, request outcomes, snapshot, adapter,
    evaluations) and runs the rest. A continued run (an existing ``run_id``; the stage commands) uses its
    own stored outputs the same way and stops after ``to_stage``."""

    run_id: str
    cfg: DomainConfig
    profile: str
    from_stage: str = "generate"
    to_stage: str = "promote"
    parent_run_id: str | None = None
    source_run_id: str | None = None  # whose outputs are reused: the parent, the run itself, or nobody
    is_new: bool = True

    def reuses(self, stage: str) -> bool:
        return stage_index(stage) < stage_index(self.from_stage)

    def beyond(self, stage: str) -> bool:
        return stage_index(stage) > stage_index(self.to_stage)


def plan_run(h: Home, domain: str, profile: str, overrides: dict[str, Any] | None, *, run_id: str | None,
             parent_run_id: str | None, from_stage: str, to_stage: str) -> RunPlan:
    """Resolve config and stage range for a pipeline call; reads DuckDB, writes nothing."""
    if stage_index(from_stage) > stage_index(to_stage):
        raise ValueError(f"from stage {from_stage!r} comes after to stage {to_stage!r}")
    existing = store.get_run(h.db, run_id) if run_id and h.db.exists() else None
    if parent_run_id:
        parent = store.get_run(h.db, parent_run_id) if h.db.exists() else None
        if parent is None:
            raise UnknownRunError(f"unknown run {parent_run_id!r}; see `loraforge runs ls`")
        if existing:
            raise ValueError(f"run {run_id!r} exists already; a rerun makes a new run")
        cfg = rerun_config(json.loads(parent["config_json"]), overrides or {}, f"run {parent_run_id}")
        return RunPlan(run_id or "", cfg, parent["profile"], from_stage, to_stage, parent_run_id, parent_run_id)
    if existing:
        if overrides:
            raise ValueError(f"run {run_id!r} keeps the config it was started with; use `loraforge rerun"
                             f" {run_id} --from STAGE --set key=value` to change it")
        return RunPlan(run_id, run_config(h, run_id), existing["profile"], from_stage, to_stage,
                       existing["parent_run_id"], run_id, is_new=False)
    if from_stage != "generate":
        raise UnknownRunError(f"unknown run {run_id!r}; see `loraforge runs ls`" if run_id else
                              f"starting at {from_stage!r} needs a stored run (a run id or a parent run)")
    return RunPlan(run_id or "", load_domain(domain, profile, overrides), profile, from_stage, to_stage)


def prepare_run(h: Home, plan: RunPlan) -> None:
    """Create the run row and give a rerun its parent's stored outputs for the reused stages."""
    cfg = plan.cfg
    if plan.is_new:
        store.create_run(h.db, plan.run_id, cfg.name, plan.profile, cfg.teacher.provider, cfg.model_dump(mode="json"),
                         parent_run_id=plan.parent_run_id)
    src = plan.source_run_id
    if not src or src == plan.run_id or not plan.reuses("generate"):
        return
    n = store.copy_run_requests(h.db, src, plan.run_id, with_outcomes=plan.reuses("validate"))
    if n == 0:
        raise ValueError(f"run {src!r} stored no teacher requests; rerun it from generate")


def reused_output(h: Home, plan: RunPlan, stage: str) -> Any:
    """What a stage before ``from_stage`` produced, read back from DuckDB (the source run's, or this run's)."""
    src = plan.source_run_id or plan.run_id
    source = store.get_run(h.db, src)
    if stage == "generate":
        out = {"reused_from": src}
    elif stage == "validate":
        out = store.run_counts(h.db, plan.run_id)
    elif stage == "snapshot":
        ds = store.get_dataset(h.db, source["dataset_id"]) if source and source["dataset_id"] else None
        if ds is None:
            raise ValueError(f"run {src!r} has no dataset snapshot; rerun it from an earlier stage")
        out = json.loads(ds["manifest_json"])
        store.set_run_outputs(h.db, plan.run_id, dataset_id=out["dataset_id"])
    elif stage == "train":
        adapter_id = (source or {}).get("adapter_id") or next(
            (a["adapter_id"] for a in reversed(store.list_adapters(h.db, plan.cfg.name)) if a["run_id"] == src), None)
        if adapter_id is None:
            raise ValueError(f"run {src!r} has no trained adapter; rerun it from train or earlier")
        store.set_run_outputs(h.db, plan.run_id, adapter_id=adapter_id)
        out = store.get_adapter(h.db, adapter_id)
    elif stage == "evaluate":
        summary = json.loads(source["summary_json"]) if source and source["summary_json"] else {}
        out = summary.get("eval") if (summary.get("eval") or {}).get("candidate") else store.run_evaluations(h.db, src)
        if not out.get("candidate"):
            raise ValueError(f"run {src!r} has no evaluation of its candidate; rerun it from evaluate or earlier")
    else:
        raise ValueError(f"stage {stage!r} cannot be reused")
    if src != plan.run_id:
        store.record_stage(h.db, plan.run_id, stage, "reused", source_run_id=src,
                           result={k: v for k, v in out.items() if isinstance(v, str | int | float)})
    return out


class DomainBusyError(RuntimeError):
    """Another run of the same domain held the domain lock for longer than we were willing to wait."""


@contextmanager
def domain_lock(h: Home, domain: str, run_id: str, timeout_s: float | None = None):
    """One run per domain at a time: an exclusive ``flock`` on ``$LORAFORGE_HOME/locks/<domain>.lock``.

    A second run of the same domain waits (saying for whom) and then proceeds; after ``timeout_s``
    (``LORAFORGE_LOCK_TIMEOUT``, default 3600 s) it fails with a message naming the run it waited for.
    The kernel drops the lock when the holder exits, so a killed run never leaves a stale lock."""
    timeout_s = float(os.environ.get("LORAFORGE_LOCK_TIMEOUT", "3600")) if timeout_s is None else timeout_s
    path = h.root / "locks" / f"{domain}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline, said = time.monotonic() + timeout_s, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = path.read_text().strip() or "another run"
                if time.monotonic() >= deadline:
                    raise DomainBusyError(
                        f"domain {domain!r} is busy: {holder} still holds {path} after {timeout_s:.0f}s; "
                        "wait for it (`loraforge runs ls`) or raise LORAFORGE_LOCK_TIMEOUT") from None
                if not said:
                    print(f"run {run_id}: waiting for {holder} to finish (one run per domain; lock {path})")
                    said = True
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"run {run_id} (pid {os.getpid()})".encode(), 0)
        if said:
            print(f"run {run_id}: got the {domain!r} lock, proceeding")
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def dask_requested(cfg: DomainConfig) -> bool:
    """Whether generation should run its batches on Dask (``LORAFORGE_TASK_RUNNER`` or ``teacher.task_runner``)."""
    return (os.environ.get("LORAFORGE_TASK_RUNNER") or cfg.teacher.task_runner) == "dask"


def with_task_runner(flow_obj, cfg: DomainConfig):
    """The flow with the task runner the config or ``LORAFORGE_TASK_RUNNER`` asks for (``dask``: a LocalCluster).

    The default (``thread``) returns the flow unchanged. ``dask`` needs the ``dask`` extra (prefect-dask);
    ``LORAFORGE_DASK_WORKERS`` sets the LocalCluster's worker processes (default 2)."""
    if not dask_requested(cfg):
        return flow_obj
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as e:
        raise RuntimeError("task_runner dask needs prefect-dask: pip install -e '.[dask]'") from e
    workers = int(os.environ.get("LORAFORGE_DASK_WORKERS", "2"))
    address = os.environ.get("LORAFORGE_DASK_ADDRESS")  # an existing cluster (dask-scheduler) instead of a local one
    runner = DaskTaskRunner(address=address) if address else DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True, "dashboard_address": ":0"})
    return flow_obj.with_options(task_runner=runner)


def compact_result(result: Any, depth: int = 2) -> dict | None:
    """A stage's result trimmed for ``run_stages``: scalars and small nested mappings, no long lists."""
    if isinstance(result, str):
        return {"value": result}
    if not isinstance(result, dict):
        return None
    out: dict[str, Any] = {}
    for k, v in result.items():
        if isinstance(v, str | int | float | bool) or v is None:
            out[k] = v
        elif isinstance(v, dict) and depth > 1:
            out[k] = compact_result(v, depth - 1)
    return out
