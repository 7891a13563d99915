"""CPU training speed of the pretrained student (SmolLM2-135M-Instruct, configs/students/smollm2-135m-instruct.yaml):
train tokens/s of LoRA on grammar examples for the baseline and after each speed choice of ``tasks/train.py``.

    python bench/student_cpu_train.py                       # 8 variants × 8 steps of 8 examples (~10 min, 2 idle cores)
    python bench/student_cpu_train.py --steps 24 --variants baseline,shipped

Every variant trains the same examples in the same order through ``tasks.train``'s own pieces (``load_base_model``,
``sft_config``, ``build_trainer``: TRL's ``SFTTrainer``, completion-only loss, PEFT LoRA r=16) from a fresh copy of
the base model; only the named choice changes:

- ``baseline``: fp32, LoRA on all linear layers, padded batches, TRL's LM head (on CPU it scores every position
  against the 49k vocabulary, prompt positions included, and masks them afterwards).
- ``bf16_autocast``: the baseline under ``torch.autocast(bfloat16)`` (TRL ``bf16=True``). ``tasks/train.py`` turns
  it on only where oneDNN reports native bf16 matmuls (``native_bf16`` below).
- ``attention_only`` / ``q_v_only``: LoRA on q,k,v,o / on q,v only (fewer adapter matmuls; a quality choice too).
- ``padding_free``: TRL's padding-free batches (one flattened row, block-diagonal causal mask; no pad tokens).
- ``completion_head``: the LM head only at labelled positions (``tasks.train.completion_head_trainer``).
- ``shipped``: what ``tasks/train.py`` does for this student on this CPU: padding-free + completion head, all-linear,
  bf16 only with native support.
- ``shipped_1_thread``: the same with ``torch.set_num_threads(1)`` (the default is one thread per core).

Figures: ``train_tokens_per_s`` = non-padding tokens (prompt + completion + EOS) ÷ seconds of optimizer steps, from
the end of the first step (warm-up) to the end of the last; ``train_tokens_per_cpu_s`` = the same tokens ÷ CPU
seconds of this process (all threads), steadier than wall time on a shared machine (``cpu_s_per_wall_s`` shows
how much of the cores it got); ``final_loss`` = the last step's training loss (the
variants should agree closely; bf16 a little less). The machine may be shared: the figures are noisy (±10-20 %),
compare them within one run. On CUDA this student trains with NF4 QLoRA through the same ``tasks/train.py``; no
GPU figures are measured here. Results go to ``bench/results/student_cpu_train.json``; the last line printed is one
JSON object of figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _report import report, save  # noqa: E402

BASE = {"bf16": False, "target_modules": "all-linear", "padding_free": False, "completion_head": False, "threads": 0}
VARIANTS = {  # in the order they run: the shipped choice early, the slow emulated-bf16 one last
    "baseline": {},
    "completion_head": {"completion_head": True},
    "padding_free": {"padding_free": True},
    "shipped": {"padding_free": True, "completion_head": True, "bf16": None},
    "attention_only": {"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
    "q_v_only": {"target_modules": ["q_proj", "v_proj"]},
    "shipped_1_thread": {"padding_free": True, "completion_head": True, "bf16": None, "threads": 1},
    "bf16_autocast": {"bf16": True},
}


def rows(n: int, template: str) -> list[dict]:
    from tasks.kinds.regex.grammar import TOPICS, generate_example

    out = []
    for i in range(n):
        ex = generate_example(20_000_000 + i, TOPICS[i % len(TOPICS)], 1 + i % 3)
        out.append({"prompt": template.format(description=ex["description"]), "completion": ex["regex"]})
    return out


def matmul_gflops(seconds: float = 2.0) -> dict:
    """GFLOP/s of one SmolLM2 MLP-shaped matmul (384 tokens × 576 → 1536) in fp32, under bf16 autocast and with bf16
    weights: whether this CPU's bf16 matmuls are native (fast) or emulated (slow), in seconds rather than minutes."""
    import contextlib

    import torch

    x, lin = torch.randn(384, 576), torch.nn.Linear(576, 1536, bias=False)
    out = {}
    for name, ctx, layer, inp in (
            ("fp32", contextlib.nullcontext(), lin, x),
            ("bf16_autocast", torch.autocast("cpu", dtype=torch.bfloat16), lin, x),
            ("bf16_weights", contextlib.nullcontext(), torch.nn.Linear(576, 1536, bias=False).bfloat16(),
             x.bfloat16())):
        with ctx, torch.no_grad():
            layer(inp)
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                layer(inp)
                n += 1
            out[name] = round(2 * 384 * 576 * 1536 * n / (time.perf_counter() - t0) / 1e9, 2)
    return out


def step_clock():
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self):
            self.marks: list[tuple[float, float, int]] = []
            self.losses: list[float] = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.marks = [(time.perf_counter(), time.process_time(), state.num_input_tokens_seen or 0)]

        def on_step_end(self, args, state, control, **kwargs):
            self.marks.append((time.perf_counter(), time.process_time(), state.num_input_tokens_seen or 0))

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))

    return StepClock()


def run_variant(name: str, model_dir: str, data, steps: int, batch: int, native_bf16: bool, default_threads: int,
                workdir: Path) -> dict:
    import torch

    from tasks.train import build_trainer, load_base_model, load_tokenizer, sft_config

    v = {**BASE, **VARIANTS[name]}
    bf16 = native_bf16 if v["bf16"] is None else v["bf16"]
    torch.set_num_threads(v["threads"] or default_threads)
    torch.manual_seed(0)
    sft = {"per_device_train_batch_size": batch, "max_steps": steps, "learning_rate": 1e-3, "logging_steps": 1,
           "save_steps": 10_000, "max_length": 160, "padding_free": v["padding_free"], "seed": 0,
           "lr_scheduler_type": "constant"}
    args = sft_config(workdir / name, sft, cuda=False, evaluate=False, progress=False, bf16=bf16)
    clock = step_clock()
    lora = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": v["target_modules"]}
    trainer = build_trainer(load_base_model(model_dir, cuda=False), load_tokenizer(model_dir), data, None, args,
                            lora, [clock], completion_head=v["completion_head"])
    trainer.train()
    (t1, c1, n1), (t2, c2, n2) = clock.marks[1], clock.marks[-1]
    timed_steps = len(clock.marks) - 2
    figures = {"variant": name, "bf16": bf16, "target_modules": v["target_modules"],
               "padding_free": v["padding_free"], "completion_head": v["completion_head"],
               "threads": torch.get_num_threads(), "train_tokens_per_s": round((n2 - n1) / (t2 - t1), 1),
               "train_tokens_per_cpu_s": round((n2 - n1) / (c2 - c1), 1),
               "cpu_s_per_wall_s": round((c2 - c1) / (t2 - t1), 2),
               "step_s": round((t2 - t1) / timed_steps, 3), "tokens_per_step": round((n2 - n1) / timed_steps, 1),
               "final_loss": round(clock.losses[-1], 4) if clock.losses else None}
    print(json.dumps(figures), file=sys.stderr, flush=True)
    torch.set_num_threads(default_threads)
    return figures


def main() -> None:
    import torch
    from datasets import Dataset

    from schemas.config import load_domain
    from tasks.student import resolve_base_model
    from tasks.train import cpu_bf16_supported

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=240, help="grammar examples (the steps cycle through them)")
    p.add_argument("--steps", type=int, default=8, help="optimizer steps per variant (the first is warm-up)")
    p.add_argument("--batch", type=int, default=8, help="examples per step")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of: {', '.join(VARIANTS)}")
    p.add_argument("--models-dir", default=str(Path(os.environ.get("LORAFORGE_HOME", ".loraforge")) / "models"),
                   help="where the student is built once (default: $LORAFORGE_HOME/models)")
    a = p.parse_args()
    names = [n.strip() for n in a.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")

    model_dir = resolve_base_model("smollm2-135m-instruct", a.models_dir)
    cfg = load_domain("regex-python", "full")
    data = Dataset.from_list(rows(a.examples, cfg.task.prompt_template))
    native_bf16, threads = cpu_bf16_supported(), torch.get_num_threads()
    matmul = matmul_gflops()
    print(json.dumps({"matmul_gflops": matmul}), file=sys.stderr, flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-student-") as tmp:
        for name in names:
            results.append(run_variant(name, model_dir, data, a.steps, a.batch, native_bf16, threads, Path(tmp)))
            save("student_cpu_train", {"partial": True, "native_bf16": native_bf16, "matmul_gflops": matmul,
                                       "variants": results})  # a long run keeps what it measured
    by = {r["variant"]: r["train_tokens_per_s"] for r in results}
    by_cpu = {r["variant"]: r["train_tokens_per_cpu_s"] for r in results}
    base, base_cpu = by.get("baseline"), by_cpu.get("baseline")
    for r in results:
        r["speedup_vs_baseline"] = round(r["train_tokens_per_s"] / base, 3) if base else None
        r["cpu_speedup_vs_baseline"] = round(r["train_tokens_per_cpu_s"] / base_cpu, 3) if base_cpu else None
    shipped = next((r for r in results if r["variant"] == "shipped"), None)
    tokens_per_example = results[0]["tokens_per_step"] / a.batch
    figures = {
        "bench": "student_cpu_train", "date": dt.date.today().isoformat(), "model": "smollm2-135m-instruct",
        "cpu": platform.processor() or platform.machine(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16, "matmul_gflops": matmul, "threads": threads, "examples": a.examples,
        "steps": a.steps, "batch": a.batch,
        "train_tokens_per_s": by, "train_tokens_per_cpu_s": by_cpu,
        "speedup_shipped_vs_baseline": shipped["speedup_vs_baseline"] if shipped else None,
        "cpu_speedup_shipped_vs_baseline": shipped["cpu_speedup_vs_baseline"] if shipped else None,
        "tokens_per_example": round(tokens_per_example, 1),
        # optimizer steps only (no model load, evaluation or saving), at the shipped variant's wall-clock rate
        "examples_per_12_min": round(shipped["train_tokens_per_s"] * 720 / tokens_per_example) if shipped else None,
        "gpu": "not measured (no accelerator on this machine); on CUDA the student trains with NF4 QLoRA",
        "note": "shared 2-core machine: figures are noisy, compare within one run",
    }
    report("student_cpu_train", figures, {**figures, "variants": results})


if __name__ == "__main__":
    main()
