"""A training process killed with SIGKILL mid-run resumes from its last complete checkpoint and ends where an
uninterrupted run of the same seed ends: same step count, same loss curve, same final loss, same adapter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.kinds.regex.grammar import TOPICS, generate_example
from tasks.train import last_complete_checkpoint

REPO = Path(__file__).resolve().parents[1]
MAX_STEPS, SAVE_STEPS = 16, 4


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds")
    rows = []
    for i in range(176):
        ex = generate_example(i, TOPICS[i % 5], 1 + i % 3)
        rows.append({"prompt": f"regex: {ex['description']}\n", "completion": ex["regex"]})
    for split, part in (("train", rows[:160]), ("val", rows[160:])):
        pq.write_table(pa.Table.from_pylist(part), d / f"{split}.parquet")
    return d


def _command(snapshot_dir, student_dir, out) -> list[str]:
    sets = {"training.sft.max_steps": MAX_STEPS, "training.sft.save_steps": SAVE_STEPS,
            "training.sft.eval_steps": SAVE_STEPS, "training.sft.logging_steps": 1,
            "training.sft.per_device_train_batch_size": 8, "training.early_stopping_patience": "null"}
    return [sys.executable, "-m", "tasks.train", "--dataset", str(snapshot_dir), "--base-model", student_dir,
            "--output", str(out), "--domain", "regex-python", "--profile", "tiny", "--no-progress",
            *[arg for k, v in sets.items() for arg in ("--set", f"{k}={v}")]]


def _run(cmd) -> dict:
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((Path(cmd[cmd.index("--output") + 1]) / "metrics.json").read_text())


@pytest.mark.slow
def test_killed_training_resumes_from_checkpoint_and_matches_uninterrupted_run(snapshot_dir, student_dir, tmp_path):
    from safetensors.torch import load_file

    reference = _run(_command(snapshot_dir, student_dir, tmp_path / "uninterrupted"))

    out = tmp_path / "killed"
    proc = subprocess.Popen(_command(snapshot_dir, student_dir, out), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while last_complete_checkpoint(out / "checkpoints") is None:
            assert proc.poll() is None, "training ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL  # killed mid-run, not finished
    assert not (out / "metrics.json").exists()
    killed_at = json.loads((last_complete_checkpoint(out / "checkpoints") / "trainer_state.json").read_text())
    assert SAVE_STEPS <= killed_at["global_step"] < MAX_STEPS

    resumed = _run(_command(snapshot_dir, student_dir, out))  # the same command again
    assert resumed["resumed_from_checkpoint"] and resumed["resumed_at_step"] == killed_at["global_step"]
    assert resumed["global_step"] == reference["global_step"] == MAX_STEPS  # the step count continued
    steps = [p["step"] for p in resumed["loss_curve"]]
    assert steps == list(range(1, MAX_STEPS + 1))  # every step logged once: no restart from 1, no gap
    for ours, ref in zip(resumed["loss_curve"], reference["loss_curve"], strict=True):
        assert ours["loss"] == pytest.approx(ref["loss"], rel=0.02), ours["step"]
    assert resumed["final_logged_loss"] == pytest.approx(reference["final_logged_loss"], rel=0.02)
    assert resumed["val_loss"] == pytest.approx(reference["val_loss"], rel=0.02)

    ours = load_file(out / "adapter_model.safetensors")
    ref = load_file(tmp_path / "uninterrupted" / "adapter_model.safetensors")
    assert ours.keys() == ref.keys()
    for name, tensor in ours.items():
        assert (tensor - ref[name]).abs().max().item() <= 1e-3 * max(1.0, ref[name].abs().max().item()), name
    assert not (out / "checkpoints").exists()
