"""The tiny student builds and reloads like a hub model; LoRA training writes a standard PEFT adapter."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.teacher.grammar import TOPICS, generate_example


def test_student_reloads_through_auto_classes_with_distinct_special_ids(student_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(student_dir)
    model = AutoModelForCausalLM.from_pretrained(student_dir)
    assert len({tok.pad_token_id, tok.bos_token_id, tok.eos_token_id}) == 3
    assert model.config.eos_token_id == tok.eos_token_id == model.generation_config.eos_token_id
    assert model.config.tie_word_embeddings is False
    ids = tok("regex: three digits\n\\d{3}")["input_ids"]
    assert tok.decode(ids) == "regex: three digits\n\\d{3}"


def test_student_is_built_once_and_reused(student_dir, tmp_path):
    from tasks.student import resolve_base_model

    assert resolve_base_model("tiny-llama", __import__("pathlib").Path(student_dir).parent) == student_dir
    assert resolve_base_model("Qwen/Qwen2.5-7B", tmp_path) == "Qwen/Qwen2.5-7B"  # hub ids pass through


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds")
    rows = []
    for i in range(96):
        ex = generate_example(i, TOPICS[i % 5], 1)
        rows.append({"prompt": f"regex: {ex['description']}\n", "completion": ex["regex"]})
    for split, part in (("train", rows[:80]), ("val", rows[80:])):
        pq.write_table(pa.Table.from_pylist(part), d / f"{split}.parquet")
    return d


def _training(**sft):
    from schemas.config import TrainingConfig

    return TrainingConfig.model_validate({
        "lora": {"r": 8, "lora_alpha": 16, "modules_to_save": ["embed_tokens", "lm_head"]},
        "sft": {"max_steps": 4, "per_device_train_batch_size": 8, "learning_rate": 3e-3, "logging_steps": 1,
                **sft},
        "quantization": {"load_in_4bit": False},
    })


def test_lora_training_writes_peft_layout_manifest_and_model_card(snapshot_dir, student_dir, tmp_path):
    from tasks.train import train_lora

    out = tmp_path / "adapter"
    m = train_lora(snapshot_dir, student_dir, out, _training(), domain="regex-python", dataset_id="ds-x",
                   progress=False)
    for name in ("adapter_config.json", "adapter_model.safetensors", "metrics.json", "README.md"):
        assert (out / name).exists(), name
    manifest = json.loads((out / "metrics.json").read_text())
    assert manifest == json.loads(json.dumps(m))
    assert m["global_step"] == 4 and m["device"] == "cpu" and not m["quantized_4bit"]
    assert m["loss_curve"][0]["loss"] > m["loss_curve"][-1]["loss"]  # it learns something in 4 steps
    assert "ds-x" in (out / "README.md").read_text()
    assert not (out / "checkpoints").exists()


def test_adapter_loads_with_peft_and_merged_outputs_match_unmerged(snapshot_dir, student_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tasks.train import train_lora

    out = tmp_path / "adapter"
    train_lora(snapshot_dir, student_dir, out, _training(), progress=False)
    tok = AutoTokenizer.from_pretrained(out)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(student_dir), out).eval()
    enc = tok(["regex: three digits\n"], return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        unmerged = model.generate(**enc, do_sample=False, max_new_tokens=12)
        merged = model.merge_and_unload().generate(**enc, do_sample=False, max_new_tokens=12)
    assert torch.equal(unmerged, merged)


def test_nf4_qlora_path_trains_on_cpu(snapshot_dir, student_dir, tmp_path):
    from schemas.config import TrainingConfig
    from tasks.train import train_lora

    training = TrainingConfig.model_validate({**_training().model_dump(), "quantization": {"load_in_4bit": True}})
    m = train_lora(snapshot_dir, student_dir, tmp_path / "qlora", training, progress=False)
    assert m["quantized_4bit"] and m["global_step"] == 4
    assert (tmp_path / "qlora" / "adapter_model.safetensors").exists()
