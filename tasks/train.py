"""Train a LoRA adapter on a dataset snapshot with TRL's SFTTrainer (QLoRA on CUDA, fp32 LoRA on CPU).

Runs on a GPU host with only the training stack (torch, transformers, peft, trl, datasets, bitsandbytes):
no Prefect, no DuckDB. It reads the Parquet snapshot and writes files only — the PEFT adapter
(``adapter_config.json``, ``adapter_model.safetensors``), the tokenizer, ``metrics.json`` (the manifest the
orchestrating flow reads back) and a model card ``README.md``.

    # the tiny CPU student on a snapshot the pipeline wrote
    python -m tasks.train --dataset .loraforge/datasets/ds-… --base-model .loraforge/models/tiny-llama-… \\
        --output /tmp/adapter --domain regex-python
    # a real base model on a GPU host (NF4 QLoRA, bf16 compute)
    python -m tasks.train --dataset DIR --base-model Qwen/Qwen2.5-7B --output DIR --domain regex-python
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import time
from pathlib import Path

import pyarrow.parquet as pq

from schemas.config import TrainingConfig, load_domain

log = logging.getLogger("loraforge.train")


def use_4bit(training: TrainingConfig, cuda: bool) -> bool:
    q = training.quantization.load_in_4bit
    return cuda if q == "auto" else bool(q)


def _load_split(dataset_dir: Path, split: str, limit: int | None, seed: int):
    from datasets import Dataset

    table = pq.read_table(dataset_dir / f"{split}.parquet", columns=["prompt", "completion"])
    ds = Dataset(table)
    if limit is not None and len(ds) > limit:
        ds = ds.shuffle(seed=seed).select(range(limit))
    return ds


def train_lora(dataset_dir: str | Path, base_model: str, output_dir: str | Path, training: TrainingConfig,
               *, domain: str = "", dataset_id: str = "", progress: bool = True) -> dict:
    """Train and save the adapter into ``output_dir``; resumes from ``output_dir/checkpoints`` if present."""
    import torch
    from peft import LoraConfig
    from transformers import AutoTokenizer, BitsAndBytesConfig
    from trl import SFTConfig, SFTTrainer

    dataset_dir, output_dir = Path(dataset_dir), Path(output_dir)
    cuda = torch.cuda.is_available()
    quantize = use_4bit(training, cuda)
    if cuda:
        dtype = torch.bfloat16
        log.info("CUDA available: %s LoRA in bf16", "QLoRA (NF4 4-bit base)" if quantize else "plain")
    else:
        dtype = torch.float32
        log.info("no CUDA device: training %s in fp32 on CPU (bf16 and NF4 kernels are GPU features)",
                 "NF4 4-bit LoRA (forced by quantization.load_in_4bit)" if quantize else "plain LoRA")

    sft = training.sft
    train_ds = _load_split(dataset_dir, "train", training.max_train_examples, sft.seed)
    val_ds = _load_split(dataset_dir, "val", 512, sft.seed)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    quantization_config = None
    if quantize:
        q = training.quantization
        quantization_config = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type=q.bnb_4bit_quant_type,
            bnb_4bit_use_double_quant=q.bnb_4bit_use_double_quant,
            bnb_4bit_compute_dtype=getattr(torch, q.bnb_4bit_compute_dtype) if cuda else torch.float32,
        )
    ckpt_dir = output_dir / "checkpoints"
    args = SFTConfig(
        output_dir=str(ckpt_dir),
        **sft.model_dump(),
        bf16=cuda,
        gradient_checkpointing=False,  # short sequences: activations are small; checkpointing only slows
        completion_only_loss=True,
        packing=False,
        save_strategy="steps",
        save_steps=max(50, sft.logging_steps * 4),
        save_total_limit=1,
        eval_strategy="no",
        report_to="none",
        disable_tqdm=not progress,
        dataloader_pin_memory=cuda,
        include_num_input_tokens_seen=True,
        model_init_kwargs={"dtype": dtype, "device_map": {"": 0} if cuda else {"": "cpu"}},
    )
    lora = LoraConfig(task_type="CAUSAL_LM", **training.lora.model_dump())
    trainer = SFTTrainer(model=base_model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                         processing_class=tokenizer, peft_config=lora, quantization_config=quantization_config)

    resume = any(ckpt_dir.glob("checkpoint-*"))
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    train_seconds = time.perf_counter() - t0
    val_loss = trainer.evaluate()["eval_loss"] if len(val_ds) else None

    trainer.save_model(str(output_dir))  # PEFT layout: adapter_config.json + adapter_model.safetensors
    tokenizer.save_pretrained(str(output_dir))
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    history = [h for h in trainer.state.log_history if "loss" in h]
    metrics = {
        "domain": domain, "dataset_id": dataset_id, "base_model": base_model,
        "device": "cuda" if cuda else "cpu", "quantized_4bit": quantize, "dtype": str(dtype).removeprefix("torch."),
        "train_examples": len(train_ds), "global_step": trainer.state.global_step,
        "train_loss": float(result.training_loss), "val_loss": None if val_loss is None else float(val_loss),
        "train_seconds": round(train_seconds, 2), "train_tokens": tokens,
        "tokens_per_second": round(tokens / train_seconds, 1) if train_seconds > 0 else None,
        "resumed_from_checkpoint": resume,
        "loss_curve": [{"step": h["step"], "loss": h["loss"]} for h in history],
        "lora": training.lora.model_dump(), "sft": sft.model_dump(),
    }
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (output_dir / "README.md").write_text(_model_card(metrics))
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # the finished adapter is saved; checkpoints were for resume
    return metrics


def _model_card(m: dict) -> str:
    ppl = math.exp(m["val_loss"]) if m["val_loss"] is not None and m["val_loss"] < 50 else None
    return (
        f"---\nlibrary_name: peft\nbase_model: {m['base_model']}\ntags: [loraforge, lora, {m['domain']}]\n---\n"
        f"# loraforge adapter for `{m['domain']}`\n\n"
        f"- Base model: `{m['base_model']}`\n- Dataset: `{m['dataset_id']}` ({m['train_examples']} training examples)\n"
        f"- Device: {m['device']}, dtype {m['dtype']}, 4-bit base: {m['quantized_4bit']}\n"
        f"- LoRA: {json.dumps(m['lora'])}\n- SFT: {json.dumps(m['sft'])}\n"
        f"- Steps: {m['global_step']}, train loss {m['train_loss']:.4f}, val loss {m['val_loss']}"
        f"{f' (perplexity {ppl:.2f})' if ppl else ''}\n- Throughput: {m['tokens_per_second']} train tokens/s\n\n"
        "Load with `PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), this_directory)`.\n"
    )


def main() -> None:
    p = argparse.ArgumentParser(description="Train a LoRA adapter on a loraforge dataset snapshot.")
    p.add_argument("--dataset", required=True, help="snapshot directory with train/val parquet files")
    p.add_argument("--base-model", required=True, help="HF model id or local path")
    p.add_argument("--output", required=True, help="adapter output directory")
    p.add_argument("--domain", required=True, help="domain whose training: section to use")
    p.add_argument("--profile", default="full", choices=["tiny", "quick", "full"])
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    cfg = load_domain(a.domain, a.profile)
    print(json.dumps(train_lora(a.dataset, a.base_model, a.output, cfg.training, domain=a.domain)))


if __name__ == "__main__":
    main()
