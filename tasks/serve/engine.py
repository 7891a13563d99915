"""The model side of serving: each distinct base model loaded once (transformers), every adapter attached to it with
PEFT ``load_adapter`` under its adapter id, and one batched greedy ``generate`` for requests of mixed adapters
(PEFT mixed-adapter batches: ``adapter_names=[…]``, ``"__base__"`` for the base alone).

Not thread-safe on purpose: the batcher calls every method from its one worker thread, so loading or deleting an
adapter happens between two ``generate`` calls and a batch never sees a half-loaded adapter.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("loraforge.serve")
BASE = "__base__"  # PEFT's name for "no adapter" in a mixed batch
_HASHES: dict[tuple, str] = {}


def base_hash(path: str | Path) -> str:
    """Content hash of a base model directory: its config and weight files (sha256, cached per size/mtime)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"base model {path} is not a model directory on this machine (no config.json)")
    files = sorted(p for p in path.iterdir() if p.name == "config.json" or p.suffix in (".safetensors", ".bin"))
    key = (str(path.resolve()), tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if key not in _HASHES:
        h = hashlib.sha256()
        for p in files:
            h.update(p.name.encode())
            with p.open("rb") as f:
                while chunk := f.read(1 << 22):
                    h.update(chunk)
        _HASHES[key] = h.hexdigest()[:16]
    return _HASHES[key]


@dataclass(frozen=True)
class AdapterInfo:
    """What serving needs to know of an adapter directory (its metrics.json manifest, else adapter_config.json)."""

    adapter_id: str
    path: str
    base_model: str
    quantization: dict | None
    r: int
    modules_to_save: list[str] | None

    @property
    def base_key(self) -> str:
        """Identity of the base the adapter was trained on: content hash (+ 4-bit settings when trained so)."""
        q = json.dumps(self.quantization, sort_keys=True) if self.quantization else "full"
        return f"{base_hash(self.base_model)}:{hashlib.sha256(q.encode()).hexdigest()[:6]}"


def adapter_info(path: str | Path) -> AdapterInfo:
    path = Path(path)
    cfg_file, manifest = path / "adapter_config.json", path / "metrics.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{path} is not an adapter directory (no adapter_config.json)")
    cfg = json.loads(cfg_file.read_text())
    m = json.loads(manifest.read_text()) if manifest.is_file() else {}
    quant = dict(m.get("quantization") or {"bnb_4bit_quant_type": "nf4"}) if m.get("quantized_4bit") else None
    return AdapterInfo(path.name, str(path), m.get("base_model") or cfg.get("base_model_name_or_path") or "", quant,
                       int(cfg.get("r") or 0), cfg.get("modules_to_save") or None)


def _wrappers(model) -> list:
    from peft.utils.other import ModulesToSaveWrapper

    return [m for m in model.modules() if isinstance(m, ModulesToSaveWrapper)]


def _alias_modules_to_save(b: LoadedBase, remove: bool = False) -> None:
    """Mixed batches of adapters with and without ``modules_to_save``: PEFT (0.21) looks every adapter of the batch
    up in each ModulesToSaveWrapper and fails on one that has no copy there. An adapter without its own copy means
    "the base module", so it gets the wrapper's original module under its name (an alias, no copy); ``remove``
    takes the aliases out again (before PEFT deletes an adapter)."""
    for w in _wrappers(b.model):
        for name in list(w.modules_to_save.keys()) if remove else b.adapters:
            if remove and w.modules_to_save[name] is w.original_module:
                del w.modules_to_save[name]
            elif not remove and name not in w.modules_to_save:
                w.modules_to_save[name] = w.original_module


@dataclass
class Output:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (EOS) | "length" (max_tokens)


@dataclass
class LoadedBase:
    key: str
    path: str
    model: object
    tok: object
    adapters: set[str] = field(default_factory=set)

    @property
    def peft(self) -> bool:
        return bool(self.adapters)


class Engine:
    """Bases by content key, adapters by id; ``generate`` answers one batch of one base."""

    def __init__(self, cpu_threads: int | None = 1):
        import torch

        self.bases: dict[str, LoadedBase] = {}
        if cpu_threads and not torch.cuda.is_available():
            torch.set_num_threads(cpu_threads)  # 1 thread: ~10x faster than 2 on a busy 2-core box

    def base(self, info_or_path: AdapterInfo | str, quantization: dict | None = None) -> LoadedBase:
        """The loaded base for an adapter (or a base directory), loading it on first use."""
        if isinstance(info_or_path, AdapterInfo):
            path, quantization, key = info_or_path.base_model, info_or_path.quantization, info_or_path.base_key
        else:
            path = info_or_path
            q = json.dumps(quantization, sort_keys=True) if quantization else "full"
            key = f"{base_hash(path)}:{hashlib.sha256(q.encode()).hexdigest()[:6]}"
        if key not in self.bases:
            from tasks.evaluate import _load  # the evaluation's loader: the same base, dtype and 4-bit settings

            model, tok = _load(path, None, quantization)
            self.bases[key] = LoadedBase(key, path, model, tok)
            log.info("loaded base %s (%s)", path, key)
        return self.bases[key]

    def load_adapter(self, info: AdapterInfo) -> LoadedBase:
        """Attach the adapter under its id (never reload new weights under an old name); returns its base."""
        b = self.base(info)
        if info.adapter_id in b.adapters:
            return b
        if not b.peft:
            from peft import PeftModel

            b.model = PeftModel.from_pretrained(b.model, info.path, adapter_name=info.adapter_id, is_trainable=False)
        else:
            b.model.load_adapter(info.path, adapter_name=info.adapter_id, is_trainable=False)
        b.model.eval()
        b.adapters.add(info.adapter_id)
        _alias_modules_to_save(b)
        return b

    def attached(self) -> set[str]:
        """Every adapter id attached to a loaded base."""
        return {a for b in self.bases.values() for a in b.adapters}

    def delete_adapter(self, adapter_id: str) -> None:
        for b in self.bases.values():
            if adapter_id in b.adapters and len(b.adapters) > 1:  # PEFT keeps at least one adapter on a PeftModel
                _alias_modules_to_save(b, remove=True)  # PEFT must not pick an alias as the new active adapter
                b.model.delete_adapter(adapter_id)
                b.adapters.discard(adapter_id)
                _alias_modules_to_save(b)

    def generate(self, b: LoadedBase, prompts: list[str], adapters: list[str], max_tokens: list[int],
                 on_token=None, cancelled=None) -> list[Output]:
        """Greedy completions for one batch (mixed adapters allowed). ``on_token(row, text_so_far)`` is called as
        tokens arrive (streaming); ``cancelled(row)`` stops a row early (its client is gone)."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        tok = b.tok
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(b.model.device)
        n_prompt = enc["attention_mask"].sum(dim=1).tolist()
        eos, pad = tok.eos_token_id, tok.pad_token_id
        rows: list[list[int]] = [[] for _ in prompts]
        done = [False] * len(prompts)

        class Rows(BaseStreamer):  # one token per row per step; the first call is the prompt
            first = True

            def put(self, value):
                if self.first:
                    self.first = False
                    return
                for i, t in enumerate(value.reshape(len(prompts), -1)[:, -1].tolist()):
                    if done[i]:
                        continue
                    if t == eos:
                        done[i] = True
                        continue
                    rows[i].append(t)
                    if len(rows[i]) >= max_tokens[i]:
                        done[i] = True
                    if on_token:
                        on_token(i, tok.decode(rows[i], skip_special_tokens=True))

            def end(self):
                pass

        class Limits(StoppingCriteria):  # per-row max_tokens and cancellation
            def __call__(self, input_ids, scores, **kwargs):
                if cancelled:
                    for i in range(len(prompts)):
                        done[i] = done[i] or cancelled(i)
                return torch.tensor(done, device=input_ids.device)

        kwargs = {"adapter_names": adapters} if b.peft else {}
        if not b.peft and any(a != BASE for a in adapters):
            raise RuntimeError(f"adapters {sorted(set(adapters) - {BASE})} are not loaded on base {b.path}")
        with torch.inference_mode():
            b.model.generate(**enc, do_sample=False, max_new_tokens=max(max_tokens), pad_token_id=pad,
                             eos_token_id=eos, streamer=Rows(), stopping_criteria=StoppingCriteriaList([Limits()]),
                             **kwargs)
        out = []
        for i, ids in enumerate(rows):
            stopped = len(ids) < max_tokens[i]
            out.append(Output(tok.decode(ids, skip_special_tokens=True), int(n_prompt[i]), len(ids) + int(stopped),
                              "stop" if stopped else "length"))
        return out
