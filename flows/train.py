"""Training stage as a flow of its own: reads a Parquet snapshot, writes adapter files and a metrics manifest.

In the embedded default the pipeline calls it in-process as a subflow on CPU. On a team setup it is the
``train-adapter`` deployment on the ``gpu`` work pool (see prefect.yaml); the parent then reads
``metrics.json`` from the adapter directory, because a flow's return value does not survive
``run_deployment`` without shared result storage.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from schemas.config import Profile, TrainingConfig, load_domain
from tasks.train import train_lora


@flow(name="train-adapter", log_prints=True)
def train_adapter(dataset_uri: str, domain: str, base_model: str, output_uri: str, profile: Profile = "full",
                  training: TrainingConfig | None = None) -> dict:
    """Train a LoRA adapter (QLoRA on CUDA) on a dataset snapshot and write it to ``output_uri``.

    ``training`` defaults to the domain YAML's ``training:`` section for the profile."""
    training = training or load_domain(domain, profile).training
    metrics = train_lora(dataset_uri, base_model, output_uri, training, domain=domain,
                         dataset_id=Path(dataset_uri).name)
    summary = json.dumps({k: v for k, v in metrics.items() if k != "loss_curve"}, indent=1)
    curve = "\n".join(f"| {p['step']} | {p['loss']:.4f} |" for p in metrics["loss_curve"])
    create_markdown_artifact(
        key="training", description=f"Training of {domain} on {Path(dataset_uri).name}",
        markdown=(f"## Training\n\n```json\n{summary}\n```\n\n| step | loss |\n|---|---|\n{curve}\n"),
    )
    print(f"training: {metrics['global_step']} steps, loss {metrics['train_loss']:.4f}, "
          f"{metrics['tokens_per_second']} tok/s, {metrics['train_seconds']} s")
    return metrics
