"""Student base models: a tiny Llama built locally (CPU default) or any HF model id / local path.

``resolve_base_model("tiny-llama", home)`` builds ``configs/students/tiny-llama.yaml`` once — random-init
``LlamaForCausalLM`` plus a byte-level BPE tokenizer trained with ``tokenizers`` on the grammar's own
text — saves both with ``save_pretrained`` under ``$LORAFORGE_HOME/models/`` and returns the directory, which
then loads through ``AutoModelForCausalLM`` / ``AutoTokenizer`` like any hub model. Any other name is
returned unchanged (an HF id or a local path).
"""

from __future__ import annotations

import json
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
    out = Path(models_dir) / f"{name}-{content_hash(spec, n=10)}"
    if not (out / "config.json").exists():
        build_student(spec, out)
    return str(out)


def _corpus(n: int) -> list[str]:
    from tasks.teacher.grammar import TOPICS, generate_example

    texts = []
    for i in range(n):
        ex = generate_example(10_000_000 + i, TOPICS[i % len(TOPICS)], 1 + i % 3)
        texts += [ex["description"], ex["regex"], *ex["positives"][:2]]
    return texts


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
    tok.train_from_iterator(_corpus(spec["tokenizer"]["corpus_examples"]), trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS)

    ids = {"pad_token_id": hf_tok.pad_token_id, "bos_token_id": hf_tok.bos_token_id,
           "eos_token_id": hf_tok.eos_token_id}
    torch.manual_seed(spec.get("seed", 0))
    config = LlamaConfig(vocab_size=len(hf_tok), **spec["config"], **ids)
    model = LlamaForCausalLM(config)
    model.generation_config.update(**ids)

    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    hf_tok.save_pretrained(tmp)
    (tmp / "student.json").write_text(json.dumps(spec, indent=2))
    tmp.replace(out)
