"""The throughput bench measures what it says: 7B-shaped architectures, ~80-token rows, a FLOPs formula that
matches the model, and a 4-bit base that serves several configurations in a row (CPU stand-in for the GPU run)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_throughput", REPO / "bench" / "train_throughput.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_throughput"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("arch", "billions"), [("qwen2.5-7b", 7.6), ("llama-2-7b", 6.7)])
def test_architectures_have_the_published_parameter_counts(bench, arch, billions):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = dict(bench.ARCHS[arch])
    config = AutoConfig.for_model(spec.pop("model_type"), **spec)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    assert sum(p.numel() for p in model.parameters()) / 1e9 == pytest.approx(billions, abs=0.06)

    from tasks.train import flops_per_token, matmul_params

    n = matmul_params(model)  # every Linear incl. lm_head; embeddings excluded
    embed = model.get_input_embeddings().weight.numel()
    assert n == sum(p.numel() for name, p in model.named_parameters() if p.dim() == 2) - embed
    assert flops_per_token(n, 0, gradient_checkpointing=False) == 4 * n
    assert flops_per_token(n, 10, gradient_checkpointing=True) == 6 * n + 20


def test_synthetic_rows_have_realistic_lengths_and_tokenize_one_word_per_token(bench):
    rows = bench.synthetic_rows(3000, 32000)
    tok = bench.word_tokenizer(32000)
    lengths = [len(tok(r["prompt"] + r["completion"])["input_ids"]) for r in rows[:200]]
    assert lengths == [len((r["prompt"] + r["completion"]).split()) for r in rows[:200]]
    mean = sum(len((r["prompt"] + r["completion"]).split()) for r in rows) / len(rows)
    assert 70 <= mean + 1 <= 90  # ~80 tokens with the EOS TRL appends


@pytest.mark.slow
def test_one_4bit_base_serves_consecutive_configurations(bench, student_dir, tmp_path):
    import json

    from datasets import Dataset

    import tasks.train as T

    vocab = json.loads((Path(student_dir) / "config.json").read_text())["vocab_size"]
    bnb = T.bnb_kwargs({"bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                        "bnb_4bit_compute_dtype": "bfloat16"}, False)
    model = T.load_base_model(student_dir, cuda=False, bnb=bnb)
    data = Dataset.from_list(bench.synthetic_rows(200, vocab))
    for cfg in bench.configurations(cuda=False, sweep=True, have_flash=False, have_liger=False):
        cfg = {**cfg, "per_device_train_batch_size": 8}
        figures, model = bench.measure(model, bench.word_tokenizer(vocab), data, cfg, cuda=False, device_name="cpu",
                                       steps=3, warmup=1, workdir=tmp_path)
        assert figures["measured_steps"] == 3 and figures["train_tokens_per_s"] > 0 and figures["mfu"] is None
        assert 8 * 16 <= figures["tokens_per_step"] <= 8 * 201  # non-padding tokens of 8 rows per micro-step
        assert not any("lora_" in name for name, _ in model.named_modules())  # LoRA unloaded for the next one
    assert not (tmp_path / "ckpt").exists() or not any((tmp_path / "ckpt").glob("checkpoint-*"))  # bench saves nothing
