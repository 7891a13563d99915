"""Training's controls and its Prefect face: early stopping, reuse of a finished adapter, recipe checks, the
``training`` artifact with the loss-curve picture, and the deployment hand-off (state check, manifest read-back)."""

from __future__ import annotations

import base64
import inspect
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas.config import ConfigError, TrainingConfig, load_domain
from tasks.kinds.regex.grammar import TOPICS, generate_example


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds-train-flow")
    rows = []
    for i in range(72):
        ex = generate_example(i, TOPICS[i % 5], 1)
        rows.append({"prompt": f"regex: {ex['description']}\n", "completion": ex["regex"]})
    for split, part in (("train", rows[:64]), ("val", rows[64:])):
        pq.write_table(pa.Table.from_pylist(part), d / f"{split}.parquet")
    return d


def _training(**overrides) -> TrainingConfig:
    base = {"training.sft.per_device_train_batch_size": 8, "training.sft.logging_steps": 1,
            "training.early_stopping_patience": None}
    return load_domain("regex-python", "tiny", {**base, **overrides}).training


def test_early_stopping_stops_after_patience_evaluations_without_improvement(snapshot_dir, student_dir, tmp_path):
    from tasks.train import train_lora

    # An improvement must beat the best eval_loss by 100: after the first evaluation none does, so training
    # stops at the second evaluation that fails to improve (patience 2), long before max_steps.
    training = _training(**{"training.sft.max_steps": 40, "training.sft.eval_steps": 2, "training.sft.save_steps": 2,
                            "training.early_stopping_patience": 2, "training.early_stopping_threshold": 100.0})
    m = train_lora(snapshot_dir, student_dir, tmp_path / "es", training, progress=False)
    assert m["stopped_early"] and m["global_step"] == 6 and m["max_steps"] == 40
    assert [p["step"] for p in m["val_curve"]] == [2, 4, 6]
    assert m["early_stopping_patience"] == 2

    again = train_lora(snapshot_dir, student_dir, tmp_path / "es", training, progress=False)
    assert again == m  # same recipe, same data, finished adapter: reused, not retrained

    changed = train_lora(snapshot_dir, student_dir, tmp_path / "es",
                         _training(**{"training.sft.max_steps": 2, "training.sft.eval_steps": 2}), progress=False)
    assert changed["global_step"] == 2 and changed["fingerprint"] != m["fingerprint"]  # another recipe retrains


def test_recipe_checks_fail_before_any_training():
    with pytest.raises(ConfigError, match="early_stopping_patience needs sft.eval_strategy"):
        load_domain("regex-python", "tiny", {"training.early_stopping_patience": 3, "training.sft.eval_strategy": "no"})
    with pytest.raises(ConfigError, match="save_steps a multiple of eval_steps"):
        load_domain("regex-python", "tiny", {"training.sft.load_best_model_at_end": True,
                                             "training.sft.save_steps": 5, "training.sft.eval_steps": 2})


def test_shipped_domain_recipe_checkpoints_evaluates_and_stops_early_by_default():
    training = load_domain("regex-python").training
    assert training.train_on == "local" and training.early_stopping_patience
    assert training.sft.save_steps > 0 and training.sft.eval_strategy == "steps" and training.sft.eval_steps > 0
    quick = load_domain("regex-python", "quick").training.sft
    assert quick.save_steps < 100 and quick.eval_steps < 100  # the quick run (~90 steps) checkpoints and evaluates


def test_train_adapter_flow_publishes_loss_curves_artifact(snapshot_dir, student_dir, tmp_path, prefect_harness):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    from flows.train import train_adapter

    out = tmp_path / "adapter"
    state = train_adapter(str(snapshot_dir), "regex-python", student_dir, str(out), "tiny",
                          overrides={"training.sft.max_steps": 4, "training.sft.logging_steps": 1}, return_state=True)
    m = state.result()
    assert m == json.loads((out / "metrics.json").read_text())
    assert m["global_step"] == 4 and (out / "loss_curves.png").exists() and (out / "README.md").exists()
    with get_client(sync_client=True) as client:  # this flow run's artifact (other tests train in this session too)
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["training"]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    assert artifacts and artifacts[-1].type == "markdown"
    markdown = artifacts[-1].data
    assert "Training of `regex-python`" in markdown and "| step | train loss | val loss |" in markdown
    png = re.search(r"!\[[^\]]*loss[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert png and base64.b64decode(png.group(1)) == (out / "loss_curves.png").read_bytes()


class _FlowRun:
    def __init__(self, state):
        self.name, self.state = "gentle-fox", state


def test_deployment_hand_off_checks_the_final_state_and_reads_the_manifest_back(monkeypatch, tmp_path):
    import prefect.deployments
    from prefect.states import Completed, Failed

    from flows.train import run_training_deployment, train_adapter

    calls = []
    state = {"now": Failed(message="CUDA out of memory")}

    def fake_run_deployment(name, parameters, timeout):  # the Prefect API edge
        calls.append((name, parameters, timeout))
        return _FlowRun(state["now"])

    monkeypatch.setattr(prefect.deployments, "run_deployment", fake_run_deployment)
    training = load_domain("regex-python", "tiny", {"training.train_on": "deployment"}).training
    args = ("/data/ds-1", "regex-python", "/models/base", str(tmp_path / "ad"), "tiny", training)
    with pytest.raises(RuntimeError, match="ended Failed"):
        run_training_deployment(*args)

    name, parameters, timeout = calls[0]
    assert name == "train-adapter/train-adapter" and timeout is None
    flow_params = set(inspect.signature(train_adapter.fn).parameters)
    assert set(parameters) <= flow_params  # the deployment's parameters are the flow's typed parameters
    assert TrainingConfig.model_validate(parameters["training"]) == training

    state["now"] = Completed()
    with pytest.raises(RuntimeError, match="metrics.json is missing"):
        run_training_deployment(*args)
    (tmp_path / "ad").mkdir()
    (tmp_path / "ad" / "metrics.json").write_text(json.dumps({"global_step": 8}))
    assert run_training_deployment(*args) == {"global_step": 8}
