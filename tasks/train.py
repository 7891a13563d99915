"""Train a LoRA adapter on a dataset snapshot with TRL's SFTTrainer: NF4 QLoRA + bf16 on CUDA, LoRA on CPU (bf16
autocast where the CPU has native bf16 matmuls, fp32 elsewhere; the LM head only at completion positions).

Reads like TRL's ``trl/scripts/sft.py``: build ``BitsAndBytesConfig``, ``LoraConfig`` and ``SFTConfig`` from the
domain YAML's ``training:`` section (the libraries' own arguments, handed over whole), load the base model
(4-bit when quantized), hand everything to ``SFTTrainer`` with
prompt/completion data (completion-only loss), resume from the last checkpoint, train, save.

    # the tiny CPU student on a snapshot the pipeline wrote; --set takes dotted overrides of the domain file
    python -m tasks.train --dataset .loraforge/datasets/ds-… --base-model .loraforge/models/tiny-llama-… \\
        --output /tmp/adapter --domain regex-python --profile quick --set training.sft.save_steps=10
    # a real base model on a GPU host: NF4 QLoRA with double quantization, bf16 compute
    python -m tasks.train --dataset DIR --base-model Qwen/Qwen2.5-7B --output DIR --domain regex-python \\
        --set training.lora.modules_to_save=null --set training.sft.learning_rate=2e-4
    # the pretrained student (configs/students/smollm2-135m-instruct.yaml): plain LoRA, padding-free batches
    python -m tasks.train --dataset DIR --base-model .loraforge/models/smollm2-135m-instruct-… --output DIR \\
        --domain regex-python --profile quick --set training.base_model=smollm2-135m-instruct

Our own code is only where the libraries have no answer: the CPU fallback and its speed (bf16 only with native
support, the completion-only LM head; bench/student_cpu_train.py), picking the newest *complete*
checkpoint (a kill can interrupt a save), tokens/s and MFU logging, the loss-curve picture, the model card and
the metrics manifest. Rerunning the same command after a crash or ``kill -9`` resumes from
``OUTPUT/checkpoints`` (global step, optimizer, scheduler, RNG and early-stopping state, log history);
rerunning it after it finished returns the saved manifest without training again.

Files written to OUTPUT: ``adapter_config.json`` + ``adapter_model.safetensors`` (standard PEFT layout), the
tokenizer, ``metrics.json`` (the manifest the orchestrating flow reads back), ``loss_curves.png`` and a model
card ``README.md``. This module needs only the training stack (torch, transformers, peft, trl, datasets,
bitsandbytes, matplotlib for the PNG): no Prefect, no DuckDB; pydantic only for ``train_lora``'s config.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schemas.config import TrainingConfig

log = logging.getLogger("loraforge.train")

CHECKPOINTS = "checkpoints"
LOSS_PNG = "loss_curves.png"
# Dense bf16 peak (no sparsity) from the vendors' datasheets, for MFU; other GPUs report MFU as null.
PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.4, "H200": 989.4, "A100": 312.0}


def cpu_bf16_supported() -> bool:
    """bf16 autocast on CPU pays only with native bf16 matmuls (AVX512-BF16 or AMX), which oneDNN reports. Without
    them bf16 matmuls are emulated: 6x slower than fp32 on an AVX2-only EPYC (bench/results/student_cpu_train.json),
    so such a CPU trains in fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def use_4bit(training: TrainingConfig, cuda: bool) -> bool:
    q = training.quantization.load_in_4bit
    return cuda if q == "auto" else bool(q)


def peak_bf16_flops(device_name: str) -> float | None:
    for key, tflops in PEAK_BF16_TFLOPS.items():  # "H100 PCIe" before "H100"
        if key in device_name:
            return tflops * 1e12
    return None


def matmul_params(model) -> int:
    """Weights that take part in a matmul per token: every ``nn.Linear`` (lm_head included; 4-bit layers are
    ``nn.Linear`` subclasses, counted by shape). Embeddings are lookups and cost no FLOPs."""
    import torch

    return sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))


def flops_per_token(n_matmul: int, n_trainable: int, *, gradient_checkpointing: bool) -> float:
    """FLOPs per trained token for LoRA on a frozen base:

        2·N forward + 2·N backward to the activations (+ 2·N forward recompute with gradient checkpointing)
        + 2·N_trainable for the weight gradients of the trainable (LoRA / saved) weights,

    N = ``matmul_params`` of the base, N_trainable = trainable parameters. Frozen weights need no weight
    gradient, hence 4·N rather than the 6·N of full fine-tuning. Attention's score/value matmuls
    (4·layers·hidden·seq_len per token) are left out: under 1 % of 4·N at the ~100-token sequences here."""
    return (6 if gradient_checkpointing else 4) * n_matmul + 2 * n_trainable


def throughput_callback(peak_flops: float | None = None):
    """A ``TrainerCallback`` that logs train tokens/s (non-padding), step time and, on a GPU with a known peak,
    MFU at every logging step. Time is summed over optimizer steps only (evaluation and saves excluded).
    Built on call so that importing this module does not import transformers."""
    from transformers import TrainerCallback

    class ThroughputCallback(TrainerCallback):
        def __init__(self):
            self.flops_per_token: float | None = None
            self.peak_flops = peak_flops
            self.points: list[dict] = []
            self.step_seconds, self.steps = 0.0, 0
            self._t = 0.0
            self._tokens0 = self._last_tokens = 0
            self._mark = (0.0, 0)

        @property
        def tokens(self) -> int:
            return int(self._last_tokens - self._tokens0)

        def rate(self, tokens: float, seconds: float) -> dict:
            tps = tokens / seconds if seconds > 0 else 0.0
            flops = tps * self.flops_per_token if self.flops_per_token else None
            return {"train_tokens_per_s": round(tps, 1),
                    "achieved_tflops": None if flops is None else round(flops / 1e12, 4),
                    "mfu": round(flops / self.peak_flops, 4) if flops and self.peak_flops else None}

        def on_train_begin(self, args, state, control, **kwargs):
            self._tokens0 = self._last_tokens = state.num_input_tokens_seen or 0
            self._mark = (0.0, self._tokens0)

        def on_step_begin(self, args, state, control, **kwargs):
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.step_seconds += time.perf_counter() - self._t
            self.steps += 1
            self._last_tokens = state.num_input_tokens_seen or 0

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            t0, n0 = self._mark
            figures = self.rate(self._last_tokens - n0, self.step_seconds - t0)
            self._mark = (self.step_seconds, self._last_tokens)
            self.points.append({"step": state.global_step, **figures})
            mfu = f" | MFU {figures['mfu']:.1%}" if figures["mfu"] is not None else ""
            log.info("step %d/%d loss %.4f | %.0f train tok/s%s", state.global_step, state.max_steps,
                     logs["loss"], figures["train_tokens_per_s"], mfu)

    return ThroughputCallback()


# ---- the recipe: library configs from our YAML ------------------------------------------------------------

def bnb_kwargs(quantization: dict, cuda: bool) -> dict:
    """``BitsAndBytesConfig`` arguments: the YAML's ``quantization:`` section as the library's keyword arguments
    (``QuantizationSettings.library_kwargs``: NF4 + double quant by default), 4-bit on, and the compute dtype the
    hardware decides: the section's (bf16 by default) on CUDA, fp32 on CPU."""
    return {**quantization, "load_in_4bit": True,
            "bnb_4bit_compute_dtype": quantization.get("bnb_4bit_compute_dtype", "bfloat16") if cuda else "float32"}


def load_base_model(base_model: str, *, cuda: bool, bnb: dict | None = None, gradient_checkpointing: bool = False,
                    attn_implementation: str | None = None, prepare_kbit: bool = False):
    """The base model in bf16 (CUDA) or fp32 (CPU), in 4-bit if ``bnb``; ``prepare_kbit`` runs peft's
    ``prepare_model_for_kbit_training`` on it (freezes it and casts every non-quantized weight — embeddings,
    norms, LM head — to fp32). Without it the base stays as TRL's own QLoRA recipe loads it: PEFT freezes the
    base, TRL enables input gradients for gradient checkpointing and casts the LoRA weights to bf16."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if cuda else torch.float32,
                              "device_map": {"": 0} if cuda else {"": "cpu"}}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if bnb is not None:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            **{**bnb, "bnb_4bit_compute_dtype": getattr(torch, bnb["bnb_4bit_compute_dtype"])})
    model = AutoModelForCausalLM.from_pretrained(base_model, **kwargs)
    if bnb is not None and prepare_kbit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    return model


def sft_config(output_dir: str | Path, sft: dict, *, cuda: bool, evaluate: bool, progress: bool = True,
               bf16: bool | None = None):
    """``SFTConfig`` from the YAML's ``sft:`` section, handed over whole (``SFTSettings.library_kwargs``: any
    ``SFTConfig`` argument, ``optim`` or ``max_grad_norm`` as much as ``learning_rate``), on top of what loraforge
    decides unless the section says otherwise: the hardware's ``bf16`` (default: on CUDA only; on CPU it needs
    ``use_cpu``, transformers' check), pinned memory on CUDA, completion-only loss without packing, no reporting.
    Always loraforge's: the output directory, non-padding token counting (tokens/s and MFU) and no evaluation
    without validation rows."""
    from trl import SFTConfig

    kw = dict(sft)
    bf16 = kw.pop("bf16", cuda if bf16 is None else bf16)
    if kw.get("use_liger_kernel"):
        import importlib.util

        if not cuda:
            log.info("sft.use_liger_kernel: Liger's kernels are Triton GPU kernels; off on CPU")
            kw["use_liger_kernel"] = False
        elif importlib.util.find_spec("liger_kernel") is None:
            raise ValueError("training.sft.use_liger_kernel: true needs the liger-kernel package "
                             "(pip install 'loraforge[gpu]')")
    if not evaluate:
        kw.update(eval_strategy="no", load_best_model_at_end=False)
    if kw.get("padding_free"):
        kw["max_length"] = None  # TRL: without packing, padding-free cannot truncate; our rows are short
    fields = {f.name for f in dataclasses.fields(SFTConfig)}
    if "activation_checkpointing" in fields:  # transformers 5.2x renamed gradient_checkpointing
        kw.setdefault("activation_checkpointing", kw.pop("gradient_checkpointing", False))
    if "train_sampling_strategy" not in fields and "group_by_length" in fields:  # transformers before 5.x
        kw["group_by_length"] = kw.pop("train_sampling_strategy", "random") == "group_by_length"
    for key in [k for k in kw if k not in fields]:
        log.warning("sft.%s=%r is not an SFTConfig field in this trl/transformers version: not applied",
                    key, kw.pop(key))
    defaults = {
        "save_strategy": "steps", "use_cpu": not cuda and bool(bf16),
        "completion_only_loss": True, "packing": False, "report_to": "none", "disable_tqdm": not progress,
        "dataloader_pin_memory": cuda, "greater_is_better": False,
        "metric_for_best_model": "eval_loss" if kw.get("eval_strategy") != "no" else None,
    }
    forced = {"output_dir": str(output_dir), "include_num_input_tokens_seen": "non_padding",
              "bf16": bf16}  # TRL defaults to bf16=True; a CPU without native bf16 matmuls trains in fp32
    return SFTConfig(**{**defaults, **kw, **forced})


def completion_head_trainer():
    """``SFTTrainer`` whose loss projects through the LM head only the positions that have a label.

    TRL's fused LM head skips prompt positions on Triton devices only; on CPU it scores every position against the
    full vocabulary (49k columns for SmolLM2) and masks the prompt's afterwards. Here the model's own forward gets
    ``logits_to_keep`` = the positions with a next-token label (the union over the batch's rows; with padding_free
    the batch is one row, so exactly the completion tokens) and the pre-shifted ``shift_labels`` of those positions,
    and transformers' causal-LM loss does the rest. Same loss, gradients and metrics (mean_token_accuracy,
    entropy, num_tokens) as TRL's path; built on call so that importing this module does not import trl."""
    import torch
    from trl import SFTTrainer

    class CompletionHeadSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            mode = "train" if self.model.training else "eval"
            labels = inputs["labels"]
            shifted = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=-100)
            keep = (shifted != -100).any(0).nonzero().flatten()
            targets = shifted[:, keep]
            fwd = {k: v for k, v in inputs.items() if k != "labels"}
            outputs = model(**fwd, use_cache=False, labels=targets, shift_labels=targets, logits_to_keep=keep,
                            num_items_in_batch=num_items_in_batch)
            loss = outputs.loss
            with torch.no_grad():
                mask = targets != -100
                n = mask.sum().clamp(min=1)
                logp = outputs.logits.detach().float().log_softmax(-1)
                entropy = -(logp.exp() * logp).sum(-1)
                self._metrics[mode]["entropy"].append((entropy[mask].sum() / n).item())
                correct = (logp.argmax(-1) == targets) & mask
                self._metrics[mode]["mean_token_accuracy"].append((correct.sum() / n).item())
            if mode == "train":
                self._total_train_tokens += int(inputs["attention_mask"].sum() if "attention_mask" in inputs
                                                else inputs["input_ids"].numel())
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
            return (loss, outputs) if return_outputs else loss

    return CompletionHeadSFTTrainer


def build_trainer(model, tokenizer, train_ds, val_ds, args, lora: dict | None, callbacks: list | None = None,
                  completion_head: bool = False):
    """``SFTTrainer`` with a PEFT ``LoraConfig`` (``all-linear`` by default) on prompt/completion rows (``lora``
    None: ``model`` is already a trainable PEFT model, e.g. a champion's adapter to continue from);
    ``completion_head``: the LM head only at labelled positions (``completion_head_trainer``; for CPU)."""
    from peft import LoraConfig
    from trl import SFTTrainer

    trainer_cls = completion_head_trainer() if completion_head else SFTTrainer
    peft_config = LoraConfig(**{"task_type": "CAUSAL_LM", **lora}) if lora is not None else None
    return trainer_cls(model=model, args=args, train_dataset=train_ds,
                      eval_dataset=val_ds if args.eval_strategy != "no" else None,
                      processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks or [])


def load_tokenizer(base_model: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


# ---- checkpoints and data ---------------------------------------------------------------------------------

def last_complete_checkpoint(ckpt_dir: str | Path) -> Path | None:
    """The newest ``checkpoint-N`` whose save finished (``trainer_state.json`` is written last and parses)."""
    best: tuple[int, Path] | None = None
    for d in Path(ckpt_dir).glob("checkpoint-*"):
        try:
            step = int(d.name.rsplit("-", 1)[1])
            json.loads((d / "trainer_state.json").read_text())
        except (ValueError, OSError):
            continue
        if (d / "adapter_model.safetensors").exists() and (best is None or step > best[0]):
            best = (step, d)
    return None if best is None else best[1]


def _load_split(dataset_dir: Path, split: str, limit: int | None, seed: int):
    import pyarrow.parquet as pq
    from datasets import Dataset

    path = dataset_dir / f"{split}.parquet"
    if not path.exists():
        return Dataset.from_dict({"prompt": [], "completion": []})
    ds = Dataset(pq.read_table(path, columns=["prompt", "completion"]))
    if limit is not None and len(ds) > limit:
        ds = ds.shuffle(seed=seed).select(range(limit))
    return ds


def _lineage(dataset_dir: Path) -> dict:
    path = dataset_dir / "manifest.json"
    if not path.exists():
        return {}
    manifest = json.loads(path.read_text())
    return {k: v for k, v in manifest.items() if k not in ("files", "columns", "path")}


def fingerprint(dataset_dir: Path, base_model: str, training: dict) -> str:
    """Same data files + base model + recipe → same fingerprint (guards reuse and resume)."""
    h = hashlib.sha256(json.dumps([base_model, training], sort_keys=True, default=str).encode())
    for split in ("train", "val"):
        p = dataset_dir / f"{split}.parquet"
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _versions() -> dict:
    import importlib.metadata as md

    out = {}
    for pkg in ("torch", "transformers", "trl", "peft", "bitsandbytes", "datasets", "accelerate"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


# ---- training ---------------------------------------------------------------------------------------------

RECIPE_KEYS = ("base_model", "lora", "sft", "quantization", "max_train_examples", "max_val_examples",
               "early_stopping_patience", "early_stopping_threshold", "attn_implementation", "init_adapter")


def train_lora(dataset_dir: str | Path, base_model: str, output_dir: str | Path, training: TrainingConfig,
               *, domain: str = "", dataset_id: str = "", progress: bool = True) -> dict:
    """Train and save the adapter into ``output_dir``; resume from ``output_dir/checkpoints`` if a run was cut
    off; return the saved manifest unchanged if this exact recipe already finished there."""
    import torch
    from transformers import EarlyStoppingCallback

    dataset_dir, output_dir = Path(dataset_dir), Path(output_dir)
    dataset_id = dataset_id or dataset_dir.name
    recipe = training.model_dump(mode="json", include=set(RECIPE_KEYS))
    fp = fingerprint(dataset_dir, base_model, recipe)
    manifest_path = output_dir / "metrics.json"
    if manifest_path.exists() and json.loads(manifest_path.read_text()).get("fingerprint") == fp:
        log.info("adapter in %s already trained with this recipe and data (fingerprint %s): reusing it",
                 output_dir, fp)
        return json.loads(manifest_path.read_text())

    cuda = torch.cuda.is_available()
    quantize = use_4bit(training, cuda)
    sft = training.sft.library_kwargs()
    # padding_free works with every attention kernel: TRL's collator flattens the batch into one row with
    # position_ids restarting at 0 and no attention_mask, from which transformers builds a block-diagonal causal mask
    # for sdpa/eager (masking_utils.find_packed_sequence_indices) and varlen offsets for flash_attention_2; the
    # padded vs padding-free loss agree (tests/test_student_smollm2.py).
    if cuda:
        device_name = torch.cuda.get_device_name(0)
        log.info("CUDA device %s: %s, bf16 compute", device_name,
                 "QLoRA (NF4 4-bit base, double quantization)" if quantize else "LoRA on a bf16 base")
        torch.cuda.reset_peak_memory_stats()
    else:
        device_name = "cpu"
        log.info("no CUDA device: training %s on CPU in %s, %d threads (fast NF4 kernels need a GPU)",
                 "NF4 4-bit LoRA (quantization.load_in_4bit: true)" if quantize else "plain LoRA",
                 "bf16 autocast (native bf16 matmuls)" if cpu_bf16_supported() else
                 "fp32 (no native bf16 matmuls on this CPU)", torch.get_num_threads())
    bf16 = cuda or cpu_bf16_supported()  # unless the YAML's sft.bf16 says otherwise

    train_ds = _load_split(dataset_dir, "train", training.max_train_examples, sft["seed"])
    val_ds = _load_split(dataset_dir, "val", training.max_val_examples, sft["seed"])
    evaluate = len(val_ds) > 0 and sft["eval_strategy"] != "no"
    if training.early_stopping_patience and not evaluate:
        log.info("early stopping off: the snapshot has no validation rows")

    ckpt_dir = output_dir / CHECKPOINTS
    fp_file = ckpt_dir / "fingerprint.txt"
    if ckpt_dir.exists() and (not fp_file.exists() or fp_file.read_text() != fp):
        log.info("checkpoints in %s are from another recipe or dataset: starting over", ckpt_dir)
        shutil.rmtree(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    fp_file.write_text(fp)
    resume = last_complete_checkpoint(ckpt_dir)

    tokenizer = load_tokenizer(base_model)
    model = load_base_model(base_model, cuda=cuda, bnb=bnb_kwargs(training.quantization.library_kwargs(), cuda)
                            if quantize else None, gradient_checkpointing=sft["gradient_checkpointing"],
                            attn_implementation=training.attn_implementation,
                            prepare_kbit=training.quantization.prepare_model_for_kbit_training)
    n_matmul = matmul_params(model)
    if training.init_adapter:  # continue from an existing adapter (a focused run's champion): its weights, trainable
        from peft import PeftModel

        log.info("starting from the LoRA weights of %s", training.init_adapter)
        model = PeftModel.from_pretrained(model, training.init_adapter, is_trainable=True)
    args = sft_config(ckpt_dir, sft, cuda=cuda, evaluate=evaluate, progress=progress, bf16=bf16)
    callbacks: list = [throughput := throughput_callback(peak_bf16_flops(device_name) if cuda else None)]
    if training.early_stopping_patience and evaluate:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=training.early_stopping_patience,
                                               early_stopping_threshold=training.early_stopping_threshold))
    lora = None if training.init_adapter else training.lora.library_kwargs()  # the adapter brings its own config
    trainer = build_trainer(model, tokenizer, train_ds, val_ds, args, lora, callbacks,
                            completion_head=not cuda and not quantize)  # TRL's own path for 4-bit bases
    n_trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    # model FLOPs (no recomputed forward), so the logged and recorded "MFU" is MFU with gradient checkpointing too
    throughput.flops_per_token = flops_per_token(n_matmul, n_trainable, gradient_checkpointing=False)

    resumed_at = None
    if resume is not None:
        resumed_at = json.loads((resume / "trainer_state.json").read_text())["global_step"]
        log.info("resuming from %s (global step %d): optimizer, scheduler, RNG and log history restored",
                 resume, resumed_at)
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    train_seconds = time.perf_counter() - t0
    val_loss = float(trainer.evaluate()["eval_loss"]) if evaluate else None

    trainer.save_model(str(output_dir))  # PEFT layout: adapter_config.json + adapter_model.safetensors
    tokenizer.save_pretrained(str(output_dir))

    state = trainer.state
    curve = [{"step": h["step"], "loss": h["loss"]} for h in state.log_history if "loss" in h]
    val_by_step = {h["step"]: h["eval_loss"] for h in state.log_history if "eval_loss" in h}  # final eval: once
    val_curve = [{"step": step, "loss": loss} for step, loss in val_by_step.items()]
    overall = throughput.rate(throughput.tokens, throughput.step_seconds)
    metrics = {
        "domain": domain, "dataset_id": dataset_id, "dataset_path": str(dataset_dir),
        "lineage": _lineage(dataset_dir), "base_model": base_model,
        "device": "cuda" if cuda else "cpu", "device_name": device_name, "quantized_4bit": quantize,
        "dtype": "bfloat16" if args.bf16 else "float16" if args.fp16 else "float32",
        "train_examples": len(train_ds), "val_examples": len(val_ds),
        "global_step": state.global_step, "max_steps": state.max_steps, "epochs": round(state.epoch or 0, 3),
        "stopped_early": state.global_step < state.max_steps,
        "train_loss": float(result.training_loss),  # mean over the steps of this call
        "first_logged_loss": curve[0]["loss"] if curve else None,
        "final_logged_loss": curve[-1]["loss"] if curve else None,
        "val_loss": val_loss, "best_val_loss": min((p["loss"] for p in val_curve), default=None),
        "train_seconds": round(train_seconds, 2), "train_tokens": throughput.tokens,
        "tokens_per_second": overall["train_tokens_per_s"], "mfu": overall["mfu"],
        "achieved_tflops": overall["achieved_tflops"],
        "step_seconds": round(throughput.step_seconds / throughput.steps, 4) if throughput.steps else None,
        "flops_per_token": throughput.flops_per_token, "trainable_params": n_trainable, "matmul_params": n_matmul,
        "peak_mem_gb": _peak_mem_gb(cuda),
        "resumed_from_checkpoint": resume is not None, "resumed_at_step": resumed_at,
        "loss_curve": curve, "val_curve": val_curve, "throughput_curve": throughput.points,
        "init_adapter": training.init_adapter,  # the adapter training started from (None: a fresh LoRA)
        "lora": recipe["lora"], "sft": recipe["sft"], "quantization": recipe["quantization"] if quantize else None,
        # what the trainer ran with for each key the sft section handed over (after the hardware's say: max_length
        # off with padding_free, Liger off on CPU …), read back from its SFTConfig
        "sft_applied": {k: v for k, v in args.to_dict().items() if k in sft},
        "early_stopping_patience": training.early_stopping_patience if evaluate else None,
        "files": {"loss_curves": LOSS_PNG, "model_card": "README.md"},
        "versions": _versions(), "fingerprint": fp,
    }
    plot_loss_curves(metrics, output_dir / LOSS_PNG)
    (output_dir / "README.md").write_text(model_card(metrics))
    manifest_path.write_text(json.dumps(metrics, indent=2))  # last: its presence means the adapter is complete
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # the finished adapter is saved; checkpoints were for resume
    log.info("trained %s: %d steps, final logged loss %s, val loss %s, %s train tok/s", output_dir,
             state.global_step, metrics["final_logged_loss"], val_loss, metrics["tokens_per_second"])
    return metrics


def _peak_mem_gb(cuda: bool) -> float:
    if cuda:
        import torch

        return round(torch.cuda.max_memory_allocated() / 2**30, 2)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)  # Linux: KiB → GiB (process RSS)


def plot_loss_curves(m: dict, path: Path) -> Path:
    """Train and validation loss against the optimizer step, log scale, saved as a PNG (no pyplot state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.8), dpi=100)
    ax = fig.add_subplot()
    if m["loss_curve"]:
        ax.plot([p["step"] for p in m["loss_curve"]], [p["loss"] for p in m["loss_curve"]], label="train loss")
    if m["val_curve"]:
        ax.plot([p["step"] for p in m["val_curve"]], [p["loss"] for p in m["val_curve"]], "o-", label="val loss")
    if m["resumed_at_step"]:
        ax.axvline(m["resumed_at_step"], color="grey", linestyle=":", label=f"resumed at {m['resumed_at_step']}")
    losses = [p["loss"] for p in m["loss_curve"] + m["val_curve"] if p["loss"] > 0]
    if losses and max(losses) / min(losses) > 10:  # a log axis only where the loss spans decades
        from matplotlib.ticker import ScalarFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"{m['domain'] or 'adapter'} · {m['dataset_id']} · {Path(m['base_model']).name}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def model_card(m: dict) -> str:
    """The adapter's README.md: base model, dataset and lineage, training settings, final metrics."""
    ppl = math.exp(m["val_loss"]) if m["val_loss"] is not None and m["val_loss"] < 50 else None

    def fmt(v):
        return "—" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)

    lineage = "\n".join(f"  - {k}: `{json.dumps(v)}`" for k, v in m["lineage"].items()) or "  - (no manifest)"
    settings = {"lora": m["lora"], "sft": {k: v for k, v in m["sft"].items() if v not in (None, False)},
                "quantization": m["quantization"], "early_stopping_patience": m["early_stopping_patience"]}
    rows = [("global step", m["global_step"]), ("epochs", m["epochs"]), ("stopped early", m["stopped_early"]),
            ("first logged train loss", m["first_logged_loss"]), ("final logged train loss", m["final_logged_loss"]),
            ("mean train loss", m["train_loss"]), ("val loss", m["val_loss"]), ("best val loss", m["best_val_loss"]),
            ("val perplexity", ppl), ("train tokens/s (non-padding)", m["tokens_per_second"]), ("MFU", m["mfu"]),
            ("peak memory GiB", m["peak_mem_gb"]), ("resumed from checkpoint", m["resumed_from_checkpoint"])]
    return (
        f"---\nlibrary_name: peft\nbase_model: {m['base_model']}\npipeline_tag: text-generation\n"
        f"tags: [loraforge, lora, {'qlora, ' if m['quantized_4bit'] else ''}{m['domain'] or 'adapter'}]\n---\n"
        f"# loraforge adapter for `{m['domain']}`\n\n"
        f"- **Base model:** `{m['base_model']}`\n"
        f"- **Dataset:** `{m['dataset_id']}` ({m['train_examples']} train / {m['val_examples']} val examples used)\n"
        f"- **Lineage** (snapshot manifest):\n{lineage}\n"
        f"- **Device:** {m['device_name']}, {m['dtype']} compute, 4-bit NF4 base: {m['quantized_4bit']}\n\n"
        f"## Training settings\n\n```json\n{json.dumps(settings, indent=1)}\n```\n\n"
        f"## Final metrics\n\n| metric | value |\n|---|---|\n"
        + "".join(f"| {k} | {fmt(v)} |\n" for k, v in rows)
        + f"\n![loss curves]({LOSS_PNG})\n\n"
        "## Use\n\n```python\nfrom peft import PeftModel\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        f"base = AutoModelForCausalLM.from_pretrained({m['base_model']!r})\n"
        "model = PeftModel.from_pretrained(base, ADAPTER_DIR)   # or .merge_and_unload() for a plain model\n"
        "tokenizer = AutoTokenizer.from_pretrained(ADAPTER_DIR)\n```\n"
    )


def main(argv: list[str] | None = None) -> None:
    from schemas.config import ConfigError, load_domain, parse_sets

    p = argparse.ArgumentParser(description="Train a LoRA adapter on a loraforge dataset snapshot.")
    p.add_argument("--dataset", required=True, help="snapshot directory with train/val parquet files")
    p.add_argument("--base-model", required=True, help="HF model id or local path")
    p.add_argument("--output", required=True, help="adapter output directory (rerun the same command to resume)")
    p.add_argument("--domain", required=True, help="domain whose training: section to use")
    p.add_argument("--profile", default="full", choices=["tiny", "quick", "full"])
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override of the domain file, value parsed as YAML (e.g. training.sft.max_steps=20); "
                        "training.sft/lora/quantization take any SFTConfig/LoraConfig/BitsAndBytesConfig argument")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    try:
        cfg = load_domain(a.domain, a.profile, parse_sets(a.set))
    except ConfigError as e:
        p.error(str(e))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    metrics = train_lora(a.dataset, a.base_model, a.output, cfg.training, domain=a.domain,
                         progress=not a.no_progress)
    print(json.dumps({k: v for k, v in metrics.items() if not k.endswith("curve")}))


if __name__ == "__main__":
    main()
