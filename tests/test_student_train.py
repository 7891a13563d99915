"""The tiny student builds and reloads like a hub model; LoRA training writes a standard PEFT adapter that loads
with plain peft, merges without changing a single greedy token, and comes with a loss-curve PNG and a model card."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.kinds.regex.grammar import TOPICS, generate_example


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


def _rows(seeds) -> list[dict]:
    rows = []
    for i in seeds:
        ex = generate_example(i, TOPICS[i % 5], 1 + i % 2)
        rows.append({"prompt": f"regex: {ex['description']}\n", "completion": ex["regex"]})
    return rows


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds")
    rows = _rows(range(96))
    for split, part in (("train", rows[:80]), ("val", rows[80:])):
        pq.write_table(pa.Table.from_pylist(part), d / f"{split}.parquet")
    (d / "manifest.json").write_text(json.dumps({"dataset_id": d.name, "domain": "regex-python", "path": str(d),
                                                 "counts": {"train": 80, "val": 16}, "files": {}}))
    return d


def _training(quantize: bool = False, prepare_kbit: bool = False, **sft):
    from schemas.config import TrainingConfig

    return TrainingConfig.model_validate({
        "lora": {"r": 8, "lora_alpha": 16, "modules_to_save": ["embed_tokens", "lm_head"]},
        "sft": {"max_steps": 4, "per_device_train_batch_size": 8, "learning_rate": 3e-3, "logging_steps": 1,
                "eval_steps": 2, "save_steps": 2, **sft},
        "quantization": {"load_in_4bit": quantize, "prepare_model_for_kbit_training": prepare_kbit},
    })


@pytest.fixture(scope="module")
def adapter(snapshot_dir, student_dir, tmp_path_factory):
    """One trained adapter (8 steps) shared by the read-only tests below."""
    from tasks.train import train_lora

    out = tmp_path_factory.mktemp("adapter")
    metrics = train_lora(snapshot_dir, student_dir, out, _training(max_steps=8), domain="regex-python",
                         progress=False)
    return out, metrics


def test_lora_training_writes_peft_layout_manifest_curves_and_model_card(adapter, snapshot_dir):
    out, m = adapter
    for name in ("adapter_config.json", "adapter_model.safetensors", "metrics.json", "README.md",
                 "loss_curves.png", "tokenizer.json"):
        assert (out / name).exists(), name
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(m))
    assert m["global_step"] == 8 and m["device"] == "cpu" and not m["quantized_4bit"]
    assert m["loss_curve"][0]["loss"] > m["loss_curve"][-1]["loss"]  # it learns something in 8 steps
    assert [p["step"] for p in m["val_curve"]] == [2, 4, 6, 8]  # every eval_steps (step 8: the final evaluation)
    assert m["tokens_per_second"] > 0 and m["train_tokens"] > 0 and m["mfu"] is None  # no MFU without a GPU peak
    assert (out / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (out / "README.md").read_text()
    for needle in ("library_name: peft", f"base_model: {m['base_model']}", snapshot_dir.name, "counts: ",
                   '"learning_rate": 0.003', "val loss", "loss_curves.png"):
        assert needle in card, needle
    assert not (out / "checkpoints").exists()  # checkpoints are for resume only


def test_merged_adapter_gives_identical_greedy_outputs_on_50_prompts(adapter, student_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _ = adapter
    tok = AutoTokenizer.from_pretrained(out, padding_side="left")
    prompts = [r["prompt"] for r in _rows(range(5000, 5050))]
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(student_dir, dtype=torch.float32),
                                      out).eval()
    with torch.inference_mode():
        unmerged = model.generate(**enc, do_sample=False, max_new_tokens=16)
        merged_model = model.merge_and_unload()
        assert not isinstance(merged_model, PeftModel)
        merged = merged_model.generate(**enc, do_sample=False, max_new_tokens=16)
    assert unmerged.shape[0] == 50
    assert torch.equal(unmerged, merged)


def test_adapter_loads_with_plain_peft_in_a_fresh_process(adapter, student_dir):
    out, _ = adapter
    code = (
        "import json, sys, torch\n"
        "from peft import PeftModel\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "base, adapter = sys.argv[1], sys.argv[2]\n"
        "tok = AutoTokenizer.from_pretrained(adapter)\n"
        "model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter).eval()\n"
        "enc = tok(['regex: three digits\\n'], return_tensors='pt', add_special_tokens=False)\n"
        "ids = model.generate(**enc, do_sample=False, max_new_tokens=8)[0].tolist()\n"
        "print(json.dumps({'type': type(model).__name__, 'ids': ids}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, student_dir, str(out)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    assert fresh["type"] == "PeftModelForCausalLM"

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    here = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(student_dir), out).eval()
    enc = tok(["regex: three digits\n"], return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        assert here.generate(**enc, do_sample=False, max_new_tokens=8)[0].tolist() == fresh["ids"]


@pytest.mark.parametrize("prepare", [False, True], ids=["trl-recipe", "prepare_model_for_kbit_training"])
def test_nf4_qlora_path_loads_4bit_trains_and_saves_on_cpu(snapshot_dir, student_dir, tmp_path, prepare):
    import bitsandbytes as bnb

    from tasks.train import bnb_kwargs, load_base_model, train_lora

    training = _training(True, prepare_kbit=prepare)
    base = load_base_model(student_dir, cuda=False, bnb=bnb_kwargs(training.quantization.library_kwargs(), False),
                           prepare_kbit=prepare)
    linear4 = [m for m in base.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert linear4 and linear4[0].weight.quant_type == "nf4"  # the base really is NF4 4-bit
    # peft's preparation freezes the whole base; without it the base is left as loaded (PEFT freezes it later)
    assert any(p.requires_grad for p in base.parameters()) is not prepare

    m = train_lora(snapshot_dir, student_dir, tmp_path / "qlora", training, progress=False)
    assert m["quantized_4bit"] and m["global_step"] == 4 and m["quantization"]["bnb_4bit_quant_type"] == "nf4"
    assert m["quantization"]["bnb_4bit_use_double_quant"] is True
    assert m["quantization"]["prepare_model_for_kbit_training"] is prepare
    assert (tmp_path / "qlora" / "adapter_model.safetensors").exists()
    assert "qlora" in (tmp_path / "qlora" / "README.md").read_text()


def test_liger_kernels_are_off_on_cpu_and_a_missing_package_is_named_on_cuda(tmp_path, monkeypatch):
    import importlib.util

    from tasks.train import sft_config

    args = sft_config(tmp_path, {"use_liger_kernel": True, "max_steps": 1}, cuda=False, evaluate=False)
    assert args.use_liger_kernel is False  # Triton GPU kernels: the CPU path trains without them

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "liger_kernel" else real(name, *a))
    with pytest.raises(ValueError, match=r"liger-kernel.*loraforge\[gpu\]"):
        sft_config(tmp_path, {"use_liger_kernel": True, "max_steps": 1}, cuda=True, evaluate=False)
