"""Training throughput of loraforge's LoRA/QLoRA path: train tokens/s, step time, peak memory, MFU and hardware
FLOPs utilisation, and the projected time for the seed team's workload (30k examples × 3 epochs).

    python bench/train_throughput.py                    # CPU: the tiny student, fp32 LoRA (~1-2 min)
    python bench/train_throughput.py --sweep            # CPU: also the length-grouping variant

On CUDA it builds a 7B-shaped model from a real architecture config (``--arch qwen2.5-7b`` default, or
``llama-2-7b``: the published dimensions are written below; random init, since no weights can be downloaded),
saves it in bf16, reloads it in NF4 4-bit (double quantization, bf16 compute) through ``tasks.train``'s own
``load_base_model``, attaches LoRA r=16 on all linear layers and trains on 30k synthetic prompt/completion rows
with realistic lengths through TRL's ``SFTTrainer`` (completion-only loss), as ``tasks.train.train_lora`` does.
The default configuration is the fastest measured on an H100: ~80 examples (~7k tokens) per micro-step grouped
by length, no gradient checkpointing, the bf16 base as TRL loads it (no fp32 upcast), Liger's fused kernels when
``liger-kernel`` is installed. A GPU host without network, with torch/transformers/peft/accelerate installed
(see /work/shared/GPU.md), needs trl, datasets, bitsandbytes and liger-kernel as wheels brought along, downloaded
on a networked machine for its Python (3.12) first:

    pip download --no-deps --python-version 3.12 --only-binary=:all: --platform manylinux_2_24_x86_64 \\
        -d wheels trl==1.16.0 datasets==5.2.0 bitsandbytes==0.50.2 liger-kernel==0.8.5 "dill<0.4.2" \\
        "multiprocess<0.70.20"
    python3 -m pip install --no-index --no-deps --target /tmp/site wheels/*.whl && export PYTHONPATH=/tmp/site
    export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True   # no fragmentation after an OOM'd configuration
    python3 bench/train_throughput.py --sweep --steps 12 --warmup 4 --workdir /tmp/lfb   # ~6-9 min on an H100
    python3 bench/train_throughput.py --grid '[{"per_device_train_batch_size": 64}]'    # chosen configurations

Figures (all measured on this run, never estimated):

- ``train_tokens_per_s``: non-padding input tokens (prompt + completion + EOS) per second of wall clock from the
  end of the last of ``--warmup`` steps to the end of training, the GPU synchronised at both ends (data loading,
  logging and metric syncs included); evaluation and checkpointing are off in the bench.
- ``step_s``: mean seconds per optimizer step; ``tokens_per_step``: mean non-padding tokens per micro-step.
- ``peak_mem_gb``: ``torch.cuda.max_memory_allocated`` during this configuration's training (GiB, the 4-bit
  weights included); on CPU the process's peak resident set size.
- ``mfu`` (model FLOPs utilisation): ``train_tokens_per_s × (4·N + 2·N_trainable) / peak``, N = weights of
  every matmul (all ``nn.Linear`` incl. lm_head, by shape), see ``tasks.train.flops_per_token``; peak = dense
  bf16 datasheet figure (H100/H200 SXM 989.4 TFLOP/s). The recomputed forward of gradient checkpointing is not
  model work and is not counted.
- ``hfu`` (hardware FLOPs utilisation): the same with ``flops_per_token`` as executed (``6·N + 2·N_trainable``
  with gradient checkpointing, which recomputes the forward); equal to ``mfu`` without checkpointing. Both are
  null on CPU (``achieved_tflops``, executed FLOPs, is reported instead). Entries recorded before 2026-12-02
  have no ``hfu`` key: their ``mfu`` is the executed-FLOPs figure, i.e. hardware utilisation.
- ``projected_30k_x3_minutes``: 3 × 30,000 × mean tokens per example ÷ ``train_tokens_per_s`` ÷ 60 (optimizer
  steps only: excludes model load, evaluation and saving).
- ``--profile FILE``: torch.profiler's kernel table of two warm-up steps of the first configuration.

Results are appended to ``bench/results/train_throughput.json`` (one object per measured configuration); the
last line printed is one JSON object with the best configuration's figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from tasks import train as T  # noqa: E402  (imports only the standard library at module level)

RESULTS = REPO / "bench" / "results" / "train_throughput.json"
WORKLOAD_EXAMPLES, WORKLOAD_EPOCHS = 30_000, 3

# Published architecture dimensions (config.json of the hub repos), random init.
ARCHS = {
    "qwen2.5-7b": {"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                   "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
                   "max_position_embeddings": 32768, "rope_theta": 1_000_000.0, "rms_norm_eps": 1e-6,
                   "tie_word_embeddings": False, "hidden_act": "silu"},
    "llama-2-7b": {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                   "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000,
                   "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
                   "hidden_act": "silu"},
}
# Lengths of a prompt→regex example for a 7B BPE tokenizer: ~80 tokens (/work/shared/GPU.md): prompt (template +
# description) ~N(52, 14), completion (the regex) ~N(27, 10); the EOS TRL appends makes ~80.
PROMPT_LEN, COMPLETION_LEN = (52, 14, 16, 120), (27, 10, 4, 80)  # mean, sd, min, max


def word_tokenizer(vocab_size: int):
    """A word-level tokenizer whose every word is one token: exact, controlled sequence lengths, no download."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    vocab = {t: i for i, t in enumerate(specials)} | {f"w{i}": i for i in range(len(specials), vocab_size)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def synthetic_rows(n: int, vocab_size: int, seed: int = 0) -> list[dict]:
    """Prompt/completion rows of realistic token lengths (see PROMPT_LEN / COMPLETION_LEN)."""
    rng = random.Random(seed)

    def length(spec):
        mean, sd, lo, hi = spec
        return max(lo, min(hi, round(rng.gauss(mean, sd))))

    def words(k):
        return " ".join(f"w{rng.randrange(4, vocab_size)}" for _ in range(k))

    return [{"prompt": words(length(PROMPT_LEN)), "completion": " " + words(length(COMPLETION_LEN))}
            for _ in range(n)]


def build_7b(arch: str, model_dir: Path) -> Path:
    """Random-init the architecture in bf16 on the GPU and save it (reused if already there)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if (model_dir / "config.json").exists():
        return model_dir
    spec = dict(ARCHS[arch])
    config = AutoConfig.for_model(spec.pop("model_type"), **spec, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    tmp = model_dir.with_name(model_dir.name + ".tmp")
    model.save_pretrained(tmp)
    del model
    torch.cuda.empty_cache()
    tmp.replace(model_dir)
    return model_dir


def configurations(cuda: bool, sweep: bool, have_flash: bool, have_liger: bool,
                   overrides: list[dict] | None = None) -> list[dict]:
    """What the libraries let us tune: examples per micro-step (→ tokens per micro-step), length grouping vs
    random order, gradient checkpointing, attention kernel, Liger's fused layer kernels."""
    if not cuda:
        base = {"per_device_train_batch_size": 32, "train_sampling_strategy": "random",
                "gradient_checkpointing": False, "attn_implementation": None}
        return [base] + ([{**base, "train_sampling_strategy": "group_by_length"}] if sweep else [])
    # The best measured on an H100 (bench/results/train_throughput.json): ~7k tokens per micro-step, no
    # recomputation, a bf16 base as TRL loads it, Liger's fused layer kernels.
    base = {"per_device_train_batch_size": 80, "train_sampling_strategy": "group_by_length",
            "gradient_checkpointing": False, "attn_implementation": "sdpa", "prepare_kbit": False,
            "use_liger_kernel": have_liger}
    if overrides:
        return [{**base, **o} for o in overrides]
    if not sweep:
        return [base]
    plain = {**base, "use_liger_kernel": False}
    grid = [  # the default first, so that a run cut short still measured it
        base,
        {**base, "per_device_train_batch_size": 64},                      # ~5.8k tokens per micro-step
        {**base, "per_device_train_batch_size": 96},                      # ~8.7k (near the 80 GB limit)
        {**base, "per_device_train_batch_size": 512, "gradient_checkpointing": True},  # ~46k, recompute
        {**plain, "per_device_train_batch_size": 64},                     # without Liger (the model is reloaded)
        {**plain, "per_device_train_batch_size": 64, "train_sampling_strategy": "random"},  # padding cost
        {**plain, "per_device_train_batch_size": 512, "gradient_checkpointing": True},
        # peft's prepare_model_for_kbit_training: embeddings, norms and LM head in fp32 (reloaded)
        {**plain, "per_device_train_batch_size": 48, "prepare_kbit": True},
    ]
    if have_flash:  # padding-free needs flash attention (varlen kernels); the model is reloaded for it
        grid.append({**plain, "attn_implementation": "flash_attention_2", "padding_free": True})
    return grid


def Profile(path: Path, warmup: int):
    """Profile two warm-up steps (outside the measured window) with torch.profiler; write the kernel table."""
    import torch
    from transformers import TrainerCallback

    first = max(1, warmup - 3)  # ends one step before the measured window opens

    class _Profile(TrainerCallback):
        prof = None

        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == first:
                acts = [torch.profiler.ProfilerActivity.CPU] + (
                    [torch.profiler.ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
                self.prof = torch.profiler.profile(activities=acts)
                self.prof.__enter__()
                self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if self.prof is not None and state.global_step == first + 2:
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                wall = time.perf_counter() - self.t0
                self.prof.__exit__(None, None, None)
                events = self.prof.key_averages()
                gpu_us = sum(getattr(e, "self_device_time_total", 0) for e in events)
                table = events.table(sort_by="self_device_time_total", row_limit=40, max_name_column_width=70)
                head = f"profiled 2 steps: wall {wall:.3f} s, GPU kernel time {gpu_us / 1e6:.3f} s\n"
                path.write_text(head + table)
                print(head + table[:6000], flush=True)
                self.prof = None

    return _Profile()


def measure(model, tokenizer, train_ds, cfg: dict, *, cuda: bool, device_name: str, steps: int, warmup: int,
            workdir: Path, profile: Path | None = None) -> tuple[dict, object]:
    """Train ``warmup + steps`` optimizer steps with one configuration; figures over the last ``steps``."""
    import torch
    from transformers import TrainerCallback

    sft = {"max_steps": warmup + steps, "learning_rate": 2e-4, "lr_scheduler_type": "constant",
           "per_device_train_batch_size": cfg["per_device_train_batch_size"], "max_length": 256,
           "logging_steps": max(1, steps // 4), "seed": 0, "save_strategy": "no", "save_total_limit": None,
           "eval_strategy": "no", "gradient_checkpointing": cfg["gradient_checkpointing"],
           "train_sampling_strategy": cfg["train_sampling_strategy"], "padding_free": cfg.get("padding_free", False),
           "use_liger_kernel": cfg.get("use_liger_kernel", False), "dataloader_num_workers": 2 if cuda else 0}
    args = T.sft_config(workdir / "ckpt", sft, cuda=cuda, evaluate=False, progress=False)
    lora = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear"}
    if not cuda:  # the tiny random-init student trains its embeddings and head too (configs/domains)
        lora["modules_to_save"] = ["embed_tokens", "lm_head"]
    n_matmul = T.matmul_params(model)
    throughput = T.throughput_callback(T.peak_bf16_flops(device_name) if cuda else None)
    mark: dict = {}

    def now() -> float:
        if cuda:
            torch.cuda.synchronize()  # the GPU runs behind the Python loop: time what it finished
        return time.perf_counter()

    class Window(TrainerCallback):
        """Wall clock from the end of the last warm-up step to the end of training: everything the steps cost
        (data loading, logging and metric syncs included), with the GPU synchronised at both ends."""

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == warmup:
                mark.update(t0=now(), tokens0=state.num_input_tokens_seen)

        def on_train_end(self, args, state, control, **kwargs):
            mark.update(t1=now(), tokens1=state.num_input_tokens_seen, steps=state.global_step - warmup)

    callbacks = [throughput, Window()] + ([Profile(profile, warmup)] if profile else [])
    trainer = T.build_trainer(model, tokenizer, train_ds, None, args, lora, callbacks)
    n_trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    throughput.flops_per_token = T.flops_per_token(n_matmul, n_trainable,
                                                   gradient_checkpointing=cfg["gradient_checkpointing"])
    if cuda:
        torch.cuda.reset_peak_memory_stats()  # this configuration's peak (the 4-bit weights stay resident)
    trainer.train()
    tokens, seconds, n_steps = mark["tokens1"] - mark["tokens0"], mark["t1"] - mark["t0"], mark["steps"]
    figures = throughput.rate(tokens, seconds)
    # The callback's figure counts the FLOPs the GPU executed, the recomputed forward of gradient checkpointing
    # included: hardware FLOPs utilisation. MFU counts the model's FLOPs only (4·N + 2·N_trainable), so the two
    # differ only for configurations with gradient checkpointing.
    figures["hfu"] = figures.pop("mfu")
    model_fpt = T.flops_per_token(n_matmul, n_trainable, gradient_checkpointing=False)
    figures["mfu"] = round(figures["train_tokens_per_s"] * model_fpt / throughput.peak_flops, 4) \
        if throughput.peak_flops else None
    peak = round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else T._peak_mem_gb(False)
    result = {
        **figures, "step_s": round(seconds / n_steps, 4), "tokens_per_step": round(tokens / n_steps, 1),
        "peak_mem_gb": peak, "flops_per_token": throughput.flops_per_token,
        "matmul_params": n_matmul, "trainable_params": n_trainable, "measured_steps": n_steps,
        "optim": str(args.optim.value if hasattr(args.optim, "value") else args.optim),
    }
    base = trainer.model.unload()  # LoRA layers out: the same 4-bit base serves the next configuration
    if cfg["gradient_checkpointing"]:
        base.gradient_checkpointing_disable()
    del trainer
    return result, base


def _version(dist: str) -> str | None:
    import importlib.metadata as md

    try:
        return md.version(dist.replace("_", "-"))
    except md.PackageNotFoundError:
        return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", default="qwen2.5-7b", choices=sorted(ARCHS), help="CUDA: architecture to build")
    p.add_argument("--sweep", action="store_true", help="measure every configuration, not just the default")
    p.add_argument("--steps", type=int, default=None, help="measured optimizer steps per configuration")
    p.add_argument("--warmup", type=int, default=None, help="unmeasured steps first")
    p.add_argument("--examples", type=int, default=None, help="synthetic rows (CUDA default 30,000)")
    p.add_argument("--workdir", default=None, help="where the built model is saved (reused between runs)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-record", action="store_true", help="do not append to bench/results/train_throughput.json")
    p.add_argument("--results", default=str(RESULTS), help="the JSON list the entries are appended to")
    p.add_argument("--grid", default=None, help="CUDA: a JSON list of overrides of the default configuration, "
                   "measured in order (Liger patches the model in place: put its entries last)")
    p.add_argument("--profile", default=None, help="profile two warm-up steps of the first configuration, "
                   "write torch.profiler's kernel table to this file")
    p.add_argument("--time-budget", type=float, default=None,
                   help="seconds: start no configuration that would likely end after this (a leased GPU's limit)")
    a = p.parse_args()

    import importlib.util

    import torch
    from datasets import Dataset

    if a.threads:
        torch.set_num_threads(a.threads)
    cuda = torch.cuda.is_available()
    device_name = torch.cuda.get_device_name(0) if cuda else "cpu"
    steps = a.steps or 20
    warmup = a.warmup if a.warmup is not None else (5 if cuda else 3)
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="loraforge-bench-"))
    t_start = time.perf_counter()

    print(f"[   0.0 s] {device_name}: building/finding the model under {workdir}", flush=True)
    if cuda:
        model_dir = build_7b(a.arch, workdir / a.arch)
        vocab = ARCHS[a.arch]["vocab_size"]
        model_name = f"{a.arch} shape, random init, NF4 4-bit (double quant), bf16 compute"
    else:
        from tasks.student import resolve_base_model

        model_dir = Path(resolve_base_model("tiny-llama", workdir / "models"))
        vocab = json.loads((model_dir / "config.json").read_text())["vocab_size"]
        model_name = "tiny-llama student (configs/students/tiny-llama.yaml), fp32"
    tokenizer = word_tokenizer(vocab)
    n_rows = a.examples or (WORKLOAD_EXAMPLES if cuda else 2_000)
    rows = synthetic_rows(n_rows, vocab)
    train_ds = Dataset.from_list(rows)
    tokens_per_example = (sum(len(r["prompt"].split()) + len(r["completion"].split()) for r in rows) / n_rows) + 1

    have_flash = cuda and importlib.util.find_spec("flash_attn") is not None
    have_liger = cuda and importlib.util.find_spec("liger_kernel") is not None
    grid = configurations(cuda, a.sweep, have_flash, have_liger, json.loads(a.grid) if a.grid else None)
    bnb = T.bnb_kwargs({"bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                        "bnb_4bit_compute_dtype": "bfloat16"}, cuda) if cuda else None

    def load(cfg):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        return T.load_base_model(str(model_dir), cuda=cuda, bnb=bnb, attn_implementation=cfg["attn_implementation"],
                                 prepare_kbit=cfg.get("prepare_kbit", False))

    def loaded_as(cfg):  # how the model in memory must have been loaded; Liger patches it in place, for good
        return cfg["attn_implementation"], cfg.get("prepare_kbit", False), bool(cfg.get("use_liger_kernel"))

    def needs_reload(loaded, cfg) -> bool:
        want = loaded_as(cfg)
        return loaded[:2] != want[:2] or (loaded[2] and not want[2])

    def stage(what: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.1f} s] {what}", flush=True)

    stage(f"model ready in {model_dir}; loading it{' in NF4 4-bit' if cuda else ''}")
    t_load = time.perf_counter()
    model, loaded = load(grid[0]), loaded_as(grid[0])[:2] + (False,)
    load_s = round(time.perf_counter() - t_load, 1)
    versions = T._versions() | {"python": sys.version.split()[0], "flash_attn": have_flash,
                                "liger_kernel": _version("liger_kernel") if have_liger else None}
    results = Path(a.results)
    existing = json.loads(results.read_text()) if results.exists() and not a.no_record else []
    entries: list[dict] = []
    measured: list[dict] = []
    last_s = 0.0
    for cfg in grid:
        if a.time_budget and time.perf_counter() - t_start + 1.2 * last_s > a.time_budget:
            stage(f"time budget: skipping {cfg}")
            continue
        t_cfg = time.perf_counter()
        stage(f"measuring {cfg}")
        if needs_reload(loaded, cfg):
            del model
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
            model, loaded = load(cfg), loaded_as(cfg)[:2] + (False,)
        settings = {**cfg, "model": model_name, "lora": "r16 alpha32 all-linear", "examples": n_rows,
                    "mean_tokens_per_example": round(tokens_per_example, 1), "warmup_steps": warmup,
                    "completion_only_loss": True, "torch_threads": torch.get_num_threads(),
                    "cuda_alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF")}
        entry = {"device": device_name, "bench": "train_throughput", "settings": settings, "versions": versions,
                 "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "model_load_s": load_s}
        error = None
        try:
            figures, model = measure(model, tokenizer, train_ds, cfg, cuda=cuda, device_name=device_name,
                                     steps=steps, warmup=warmup, workdir=workdir,
                                     profile=Path(a.profile) if a.profile and not entries else None)
        except Exception as e:  # noqa: BLE001  (an OOM or a kernel that does not fit this stack: record, go on)
            error = f"{type(e).__name__}: {str(e)[:300]}"
        if error is not None:
            entry.update(train_tokens_per_s=None, mfu=None, hfu=None, peak_mem_gb=None, projected_30k_x3_minutes=None,
                         error=error)
            del model  # the failed trainer left LoRA layers in it: start again from the saved weights
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()
            model, loaded = load(cfg), loaded_as(cfg)[:2] + (False,)
        else:
            loaded = loaded[:2] + (loaded[2] or bool(cfg.get("use_liger_kernel")),)
            tps = figures["train_tokens_per_s"]
            projected = WORKLOAD_EPOCHS * WORKLOAD_EXAMPLES * tokens_per_example / tps / 60 if tps else None
            entry.update(figures, projected_30k_x3_minutes=None if projected is None else round(projected, 1))
        entry.update(load_average_1m=round(os.getloadavg()[0], 1), cpu_count=os.cpu_count(),  # a shared box?
                     config_wall_s=round(time.perf_counter() - t_cfg, 1))
        entries.append(entry)
        last_s = time.perf_counter() - t_cfg
        print(json.dumps({k: entry.get(k) for k in ("train_tokens_per_s", "mfu", "hfu", "step_s", "peak_mem_gb",
                                                    "projected_30k_x3_minutes", "error")} | {"config": cfg}),
              flush=True)
        if cuda:
            torch.cuda.empty_cache()
        measured = [e for e in entries if e.get("train_tokens_per_s")]
        best = max(measured, key=lambda e: e["train_tokens_per_s"]) if measured else entries[-1]
        for e in entries:
            e["best_of_run"] = e is best
        if not a.no_record:  # after every configuration: a run killed at its time limit keeps what it measured
            results.parent.mkdir(parents=True, exist_ok=True)
            results.write_text(json.dumps(existing + entries, indent=2) + "\n")

    summary = {"bench": "train_throughput", "device": device_name, "configs_measured": len(measured),
               "wall_s": round(time.perf_counter() - t_start, 1),
               **{k: best.get(k) for k in ("train_tokens_per_s", "step_s", "tokens_per_step", "mfu", "hfu",
                                           "achieved_tflops", "peak_mem_gb", "projected_30k_x3_minutes")},
               "best_settings": {k: best["settings"][k] for k in ("per_device_train_batch_size",
                                                                  "train_sampling_strategy", "gradient_checkpointing",
                                                                  "attn_implementation")}}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
