"""Evaluation runs on the base the adapter was trained on: a QLoRA adapter (its manifest says 4-bit) is evaluated,
and its serving parity checked, on an NF4 base — not on a bf16/fp32 copy of it (bitsandbytes NF4 loads on CPU)."""

from __future__ import annotations

import json

import pytest

QLORA_MANIFEST = {"quantized_4bit": True, "quantization": {
    "load_in_4bit": "auto", "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
    "bnb_4bit_compute_dtype": "bfloat16", "prepare_model_for_kbit_training": False}}


@pytest.fixture(scope="module")
def lora_dir(student_dir, tmp_path_factory):
    """A real LoRA adapter of the tiny student (random, non-zero weights), saved as tasks/train.py saves one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("adapter")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(student_dir),
                           LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(student_dir).save_pretrained(out)
    return out


def _n_4bit(model) -> int:
    import bitsandbytes as bnb

    return sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())


def test_the_manifest_decides_the_base_precision(tmp_path):
    from tasks.evaluate import base_precision, trained_quantization

    (tmp_path / "metrics.json").write_text(json.dumps(QLORA_MANIFEST))
    q = trained_quantization(tmp_path)
    assert q["bnb_4bit_quant_type"] == "nf4" and q["bnb_4bit_use_double_quant"] is True
    assert base_precision(q, cuda=True) == "nf4" and base_precision(None, cuda=True) == "bf16"
    (tmp_path / "metrics.json").write_text(json.dumps({"quantized_4bit": False, "quantization": None}))
    assert trained_quantization(tmp_path) is None and trained_quantization(None) is None
    assert base_precision(None, cuda=False) == "fp32"


@pytest.mark.slow
def test_a_qlora_adapter_is_evaluated_and_parity_checked_on_an_nf4_base(student_dir, lora_dir):
    from tasks.evaluate import _load, generate_for_eval, trained_quantization

    prompts = [f"regex: {w}\n" for w in ("a date", "an ip address", "three digits", "a hex colour")]
    (lora_dir / "metrics.json").write_text(json.dumps(QLORA_MANIFEST))
    model, _ = _load(student_dir, str(lora_dir), trained_quantization(lora_dir))
    assert _n_4bit(model) > 0  # the linear layers of the base are NF4, as in training
    gen = generate_for_eval(student_dir, str(lora_dir), prompts, batch_size=4, max_new_tokens=4, parity_n=2)
    assert gen["base_precision"] == "nf4" and gen["parity"]["base"] == "nf4" and gen["parity"]["n"] == 2
    assert len(gen["texts"]) == 4

    (lora_dir / "metrics.json").write_text(json.dumps({"quantized_4bit": False, "quantization": None}))
    model, _ = _load(student_dir, str(lora_dir), trained_quantization(lora_dir))
    assert _n_4bit(model) == 0
    gen = generate_for_eval(student_dir, str(lora_dir), prompts, batch_size=4, max_new_tokens=4, parity_n=2)
    assert gen["base_precision"] == "fp32" and gen["parity"]["base"] == "fp32"


@pytest.mark.slow
def test_the_base_model_beside_a_qlora_candidate_is_loaded_in_4bit_and_cached_apart(student_dir, domain_cfg):
    from flows.evaluate import cache_key
    from tasks.evaluate import generate_for_eval

    q = QLORA_MANIFEST["quantization"]
    gen = generate_for_eval(student_dir, None, ["regex: a date\n"], batch_size=1, max_new_tokens=2, parity_n=0,
                            quantization=q)
    assert gen["base_precision"] == "nf4"
    items = [{"example_id": "g1", "prompt": "regex: x\n", "completion": "x", "positives": ["x"], "negatives": []}]
    assert cache_key(domain_cfg, "base:m", "m", None, items, [], q) != cache_key(domain_cfg, "base:m", "m", None,
                                                                                 items, [])
