"""Training stage as a flow of its own: reads a Parquet snapshot, writes adapter files and a metrics manifest.

In the embedded default the pipeline calls ``train_adapter`` in-process (a subflow, CPU). With
``training.train_on: deployment`` the pipeline launches the ``train-adapter`` deployment on the ``gpu`` work
pool (prefect.yaml) through ``run_training_deployment`` and then reads ``metrics.json`` from the adapter
directory, because a flow's return value does not survive ``run_deployment`` without shared result storage.
The snapshot, the base model path and the adapter directory must be reachable from the GPU worker under the
same paths (a shared volume), or the base model must be a hub id.

What the UI shows for a training run: the log lines of ``tasks.train`` (device choice, resume point, loss and
train tokens/s at every logging step) and a ``training`` markdown artifact with the loss-curve picture, the
final metrics and the loss table.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from schemas.config import DomainName, Profile, TrainingConfig, load_domain
from tasks.train import LOSS_PNG, train_lora


class _ToRunLogger(logging.Handler):
    """Forwards ``loraforge.train`` log records (tokens/s, resume, device) to the flow run's log."""

    def __init__(self, run_logger):
        super().__init__(logging.INFO)
        self.run_logger = run_logger

    def emit(self, record: logging.LogRecord) -> None:
        self.run_logger.log(record.levelno, record.getMessage())


# log_prints stays off: libraries print while a model is pickled/inspected (dill dumps bytecode), which would
# flood the run log; our own summary goes through the run logger.
@flow(name="train-adapter", log_prints=False)  # explicit: a subflow would inherit the parent's True
def train_adapter(dataset_uri: str, domain: DomainName, base_model: str, output_uri: str, profile: Profile = "full",
                  training: TrainingConfig | None = None, overrides: dict[str, Any] | None = None) -> dict:
    """Train a LoRA adapter (QLoRA on CUDA) on a dataset snapshot and write it to ``output_uri``.

    ``training`` defaults to the domain YAML's ``training:`` section for the profile, with ``overrides``
    (dotted keys such as ``{"training.sft.max_steps": 50}``) applied. A rerun with the same ``output_uri``
    resumes from the last checkpoint there, or returns at once if that adapter is already complete.

    Args:
        dataset_uri: The Parquet snapshot directory (path or fsspec URL) to train on.
        domain: The domain whose training recipe applies.
        base_model: A student name from configs/students/, a Hugging Face model id or a local path.
        output_uri: Where the adapter, its checkpoints and metrics.json are written.
        profile: The profile whose training overrides apply: tiny, quick or full.
        training: A complete training recipe (default: the domain file's training section).
        overrides: Dotted keys applied to the recipe, e.g. {"training.sft.max_steps": 50}.
    """
    if training is not None and overrides:
        raise ValueError("pass either training (a full TrainingConfig) or overrides (dotted keys), not both")
    training = training or load_domain(domain, profile, overrides).training
    train_log = logging.getLogger("loraforge.train")
    handler, level, propagate = _ToRunLogger(get_run_logger()), train_log.level, train_log.propagate
    train_log.addHandler(handler)
    train_log.setLevel(logging.INFO)
    train_log.propagate = False  # the run logger prints to the console too: one line, not two
    try:
        metrics = train_lora(dataset_uri, base_model, output_uri, training, domain=domain,
                             dataset_id=Path(dataset_uri).name, progress=False)
    finally:
        train_log.removeHandler(handler)
        train_log.setLevel(level)
        train_log.propagate = propagate
    publish_training_artifact(metrics, Path(output_uri))
    get_run_logger().info(f"training: {metrics['global_step']} steps, final loss {metrics['final_logged_loss']}, "
                          f"val loss {metrics['val_loss']}, {metrics['tokens_per_second']} train tok/s, "
                          f"{metrics['train_seconds']} s")
    return metrics


def training_markdown(m: dict, png: Path | None) -> str:
    """The artifact: loss curves inline (PNG as a data: URI, so it renders without a file server), metrics, table."""
    picture = ""
    if png is not None and png.exists():
        data = base64.b64encode(png.read_bytes()).decode()
        picture = f"![train and validation loss](data:image/png;base64,{data})\n\n"
    rows = [("base model", f"`{m['base_model']}`"), ("dataset", f"`{m['dataset_id']}`"),
            ("device", f"{m['device_name']} ({m['dtype']}, 4-bit: {m['quantized_4bit']})"),
            ("steps", f"{m['global_step']} of {m['max_steps']}" + (" (stopped early)" if m["stopped_early"] else "")),
            ("first → final logged train loss", f"{m['first_logged_loss']} → {m['final_logged_loss']}"),
            ("val loss (best)", f"{m['val_loss']} ({m['best_val_loss']})"),
            ("train tokens/s", m["tokens_per_second"]), ("MFU", m["mfu"] if m["mfu"] is not None else "n/a"),
            ("peak memory GiB", m["peak_mem_gb"]), ("seconds", m["train_seconds"]),
            ("resumed from checkpoint", f"step {m['resumed_at_step']}" if m["resumed_from_checkpoint"] else "no")]
    val = {p["step"]: p["loss"] for p in m["val_curve"]}
    steps = sorted({p["step"] for p in m["loss_curve"]} | set(val))
    train = {p["step"]: p["loss"] for p in m["loss_curve"]}
    curve = "".join(f"| {s} | {train.get(s, '')} | {val.get(s, '')} |\n" for s in steps)
    return (f"## Training of `{m['domain']}` on `{m['dataset_id']}`\n\n{picture}"
            "| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
            + f"\n| step | train loss | val loss |\n|---|---|---|\n{curve}")


def publish_training_artifact(metrics: dict, adapter_dir: Path) -> None:
    create_markdown_artifact(key="training", markdown=training_markdown(metrics, adapter_dir / LOSS_PNG),
                             description=f"Training of {metrics['domain']} on {metrics['dataset_id']}")


def run_training_deployment(dataset_uri: str, domain: str, base_model: str, output_uri: str, profile: Profile,
                            training: TrainingConfig) -> dict:
    """Launch the ``train-adapter`` deployment (``training.deployment``) with ``train_adapter``'s parameters,
    wait for it, and read its manifest back from the adapter directory."""
    from prefect.deployments import run_deployment

    flow_run = run_deployment(
        training.deployment, timeout=training.deployment_timeout_s,
        parameters={"dataset_uri": dataset_uri, "domain": domain, "base_model": base_model,
                    "output_uri": output_uri, "profile": profile, "training": training.model_dump(mode="json")},
    )
    state = flow_run.state
    if state is None or not state.is_completed():
        raise RuntimeError(
            f"training deployment {training.deployment!r} run {flow_run.name!r} ended "
            f"{state.name if state else 'without a state'} (timeout {training.deployment_timeout_s} s): "
            "no adapter to record; see that flow run's logs")
    manifest = Path(output_uri) / "metrics.json"
    if not manifest.exists():
        raise RuntimeError(f"training deployment run {flow_run.name!r} completed but {manifest} is missing: "
                           "the GPU worker must write the adapter where this process can read it")
    return json.loads(manifest.read_text())
