"""Library keys pass through: ``training.sft``, ``training.lora`` and ``training.quantization`` take TRL's, PEFT's
and bitsandbytes' own arguments, checked against the libraries' own fields, and reach the trainer whole."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas.config import (
    ConfigError,
    LoraSettings,
    QuantizationSettings,
    SFTSettings,
    library_arguments,
    load_domain,
    parse_domain,
    parse_sets,
)

REPO = Path(__file__).resolve().parents[1]
SETS = ["training.sft.optim=adamw_torch", "training.sft.max_grad_norm=0.5"]


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory):
    """A tiny snapshot: 40 train and 8 val rows."""
    d = tmp_path_factory.mktemp("ds-library-keys")
    rows = [{"prompt": f"regex: exactly {n} digits\n", "completion": f"\\d{{{n}}}"} for n in range(1, 49)]
    for split, part in (("train", rows[:40]), ("val", rows[40:])):
        pq.write_table(pa.Table.from_pylist(part), d / f"{split}.parquet")
    return d


def test_set_library_keys_reach_the_sft_config_and_the_optimizer(student_dir, tmp_path):
    from datasets import Dataset

    from tasks.train import build_trainer, load_base_model, load_tokenizer, sft_config

    training = load_domain("regex-python", "tiny", parse_sets(SETS)).training
    args = sft_config(tmp_path, training.sft.library_kwargs(), cuda=False, evaluate=False, progress=False)
    assert args.optim == "adamw_torch" and args.max_grad_norm == 0.5
    default = load_domain("regex-python", "tiny").training
    plain = sft_config(tmp_path, default.sft.library_kwargs(), cuda=False, evaluate=False, progress=False)
    assert plain.optim == "adamw_torch_fused" and plain.max_grad_norm == 1.0  # TRL's own defaults otherwise

    ds = Dataset.from_list([{"prompt": "regex: three digits\n", "completion": "\\d{3}"}] * 4)
    trainer = build_trainer(load_base_model(student_dir, cuda=False), load_tokenizer(student_dir), ds, None, args,
                            training.lora.library_kwargs())
    assert trainer.args.optim == "adamw_torch" and trainer.args.max_grad_norm == 0.5
    assert trainer.create_optimizer().defaults.get("fused") is not True  # adamw_torch, not TRL's fused default


def test_python_m_tasks_train_set_keys_reach_the_trainer_of_a_real_run(snapshot_dir, student_dir, tmp_path, capsys):
    from tasks.train import main

    out = tmp_path / "adapter"
    main(["--dataset", str(snapshot_dir), "--base-model", student_dir, "--output", str(out), "--domain",
          "regex-python", "--profile", "tiny", "--no-progress", "--set", "training.sft.max_steps=2",
          "--set", "training.early_stopping_patience=null", *[a for s in SETS for a in ("--set", s)]])
    m = json.loads((out / "metrics.json").read_text())
    assert m["global_step"] == 2
    assert m["sft_applied"]["optim"] == "adamw_torch" and m["sft_applied"]["max_grad_norm"] == 0.5
    assert m["sft"]["optim"] == "adamw_torch"  # and the recipe (fingerprint, model card) records them
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["global_step"] == 2


def test_library_keys_in_the_yaml_section_itself_pass_through():
    import yaml

    data = yaml.safe_load((REPO / "configs/domains/regex-python.yaml").read_text())
    data["training"]["sft"]["max_grad_norm"] = 0.5
    data["training"]["lora"]["use_rslora"] = True
    data["training"]["quantization"]["bnb_4bit_quant_storage"] = "uint8"
    training = parse_domain(data).training
    assert training.sft.library_kwargs()["max_grad_norm"] == 0.5
    assert training.lora.library_kwargs()["use_rslora"] is True
    quant = training.quantization.library_kwargs()
    assert quant["bnb_4bit_quant_storage"] == "uint8" and "load_in_4bit" not in quant  # `auto` is loraforge's


@pytest.mark.parametrize(("item", "key", "hint"), [
    ("training.sft.optimm=adamw_torch", "training.sft.optimm", "optim"),
    ("training.lora.rr=4", "training.lora.rr", "r"),
    ("training.quantization.load_in_5bit=true", "training.quantization.load_in_5bit", "load_in_4bit"),
])
def test_a_misspelt_library_key_fails_naming_the_key_and_the_closest_argument(item, key, hint):
    with pytest.raises(ConfigError) as e:
        load_domain("regex-python", "tiny", parse_sets([item]))
    assert f"{key}: unknown key" in str(e.value) and f"did you mean {hint!r}" in str(e.value)


def test_python_m_tasks_train_rejects_a_misspelt_key_before_training(tmp_path, capsys):
    from tasks.train import main

    with pytest.raises(SystemExit) as e:
        main(["--dataset", str(tmp_path), "--base-model", "unused", "--output", str(tmp_path / "out"),
              "--domain", "regex-python", "--set", "training.sft.max_grad_norn=0.5"])
    assert e.value.code == 2
    assert "training.sft.max_grad_norn: unknown key" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_keys_loraforge_sets_itself_are_refused_by_name():
    with pytest.raises(ConfigError, match=r"training\.sft\.output_dir: set by loraforge"):
        load_domain("regex-python", "tiny", {"training.sft.output_dir": "/tmp/elsewhere"})


@pytest.mark.parametrize("section", [SFTSettings, LoraSettings, QuantizationSettings])
def test_every_key_loraforge_declares_is_an_argument_of_the_library(section):
    # declared keys skip the library import at load time, so each must be one the library really takes
    declared = set(section.model_fields) - section.own_keys
    assert declared - library_arguments(section.library) == set()


def test_library_arguments_are_the_dataclass_fields_of_sft_and_lora_configs():
    import dataclasses

    from peft import LoraConfig
    from trl import SFTConfig

    for cls, target in ((SFTConfig, SFTSettings.library), (LoraConfig, LoraSettings.library)):
        assert library_arguments(target) == {f.name for f in dataclasses.fields(cls) if f.init}
    assert {"load_in_4bit", "bnb_4bit_quant_storage"} <= library_arguments(QuantizationSettings.library)


def test_shipped_domains_load_without_importing_the_training_stack():
    code = ("import sys; from schemas.config import available_domains, load_domain, PROFILES\n"
            "[load_domain(d, p) for d in available_domains() for p in PROFILES]\n"
            "print(sorted(m for m in ('torch', 'trl', 'peft', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_set_values_are_parsed_as_yaml_and_bad_items_are_refused():
    assert parse_sets(SETS + ["training.lora.target_modules=[q_proj, v_proj]", "training.sft.learning_rate=1e-3"]) == {
        "training.sft.optim": "adamw_torch", "training.sft.max_grad_norm": 0.5,
        "training.lora.target_modules": ["q_proj", "v_proj"], "training.sft.learning_rate": 1e-3}
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        parse_sets(["training.sft.optim"])
