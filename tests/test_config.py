"""The domain config is a contract: typos and bad values fail fast with the file, the key and what is allowed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from schemas.config import ConfigError, available_domains, load_domain, parse_domain

DOMAIN_FILE = Path(__file__).parents[1] / "configs" / "domains" / "regex-python.yaml"


def _raw() -> dict:
    return yaml.safe_load(DOMAIN_FILE.read_text())


@pytest.mark.parametrize("profile", ["tiny", "quick", "full"])
def test_shipped_domain_loads_for_every_profile(profile):
    cfg = load_domain("regex-python", profile)
    assert cfg.name == "regex-python"
    assert "{description}" in cfg.task.prompt_template


def test_profiles_scale_the_request_count():
    assert load_domain("regex-python", "full").dataset.n_requests == 30_000
    assert load_domain("regex-python", "quick").dataset.n_requests == 1_000
    assert load_domain("regex-python", "tiny").dataset.n_requests < 1_000


def test_typo_in_a_section_names_the_file_and_key():
    data = _raw()
    data["training"]["sft"]["learning_rat"] = 1e-3
    with pytest.raises(ConfigError) as e:
        parse_domain(data, source="regex-python.yaml")
    msg = str(e.value)
    assert "regex-python.yaml" in msg and "training.sft.learning_rat" in msg and "unknown key" in msg


def test_wrong_value_says_what_is_allowed():
    data = _raw()
    data["teacher"]["provider"] = "anthropic"
    with pytest.raises(ConfigError) as e:
        parse_domain(data)
    assert "teacher.provider" in str(e.value) and "grammar" in str(e.value)


def test_profile_override_with_unknown_key_is_rejected():
    data = _raw()
    data["profiles"]["tiny"]["dataset.n_request"] = 5
    with pytest.raises(ConfigError, match="dataset.n_request"):
        parse_domain(data, profile="tiny")


def test_unknown_domain_lists_available_ones():
    with pytest.raises(ConfigError) as e:
        load_domain("regex-perl")
    assert "regex-perl" in str(e.value) and "regex-python" in str(e.value)


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a b", "Regex", "", "x/../../y"])
def test_domain_names_must_be_slugs(bad):
    with pytest.raises(ConfigError, match="slug"):
        load_domain(bad)


def test_available_domains_include_the_flagship():
    assert "regex-python" in available_domains()


def test_cli_rejects_unknown_domain_fast_with_a_message():
    p = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--domain", "regex-pythn"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "unknown domain 'regex-pythn'" in p.stderr and "regex-python" in p.stderr
    assert "Traceback" not in p.stderr


def test_cli_rejects_config_typo_with_file_and_key(tmp_path):
    cfg_root = tmp_path / "configs"
    (cfg_root / "domains").mkdir(parents=True)
    data = _raw()
    data["gate"]["min_semantic_acuracy"] = 0.5
    (cfg_root / "domains" / "regex-python.yaml").write_text(yaml.safe_dump(data))
    p = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--domain", "regex-python", "--profile", "tiny"],
                       capture_output=True, text=True, timeout=60, env={**__import__("os").environ,
                                                                     "LORAFORGE_CONFIGS": str(cfg_root)})
    assert p.returncode == 2
    assert "gate.min_semantic_acuracy" in p.stderr and "regex-python.yaml" in p.stderr
