"""The gate decides from thresholds and the champion, and explains every check."""

from __future__ import annotations

from schemas.config import GateConfig
from tasks.registry import decide, move_pointer, pointer_path

M = {"compile_rate": 0.95, "semantic_accuracy": 0.6, "mean_output_tokens": 12.0}


def test_candidate_clearing_every_threshold_is_promoted():
    d = decide(M, None, GateConfig(min_compile_rate=0.9, min_semantic_accuracy=0.5))
    assert d["promote"] and d["reasons"] == []
    assert {c["name"] for c in d["checks"]} == {"min_compile_rate", "min_semantic_accuracy"}


def test_candidate_below_threshold_is_rejected_with_the_failed_check():
    d = decide({**M, "semantic_accuracy": 0.3}, None, GateConfig(min_semantic_accuracy=0.5))
    assert not d["promote"] and d["reasons"] == ["min_semantic_accuracy"]
    check = next(c for c in d["checks"] if c["name"] == "min_semantic_accuracy")
    assert check == {"name": "min_semantic_accuracy", "value": 0.3, "threshold": 0.5, "passed": False}


def test_candidate_worse_than_champion_is_rejected():
    d = decide(M, {**M, "semantic_accuracy": 0.7}, GateConfig(min_semantic_accuracy=0.5))
    assert not d["promote"] and d["reasons"] == ["min_improvement_over_champion"]


def test_too_verbose_candidate_is_rejected():
    d = decide({**M, "mean_output_tokens": 80}, None, GateConfig(max_mean_output_tokens=60))
    assert d["reasons"] == ["max_mean_output_tokens"]


def test_pointer_moves_atomically_to_the_new_champion(tmp_path):
    (tmp_path / "a1").mkdir()
    (tmp_path / "a2").mkdir()
    move_pointer(tmp_path, "d", str(tmp_path / "a1"))
    move_pointer(tmp_path, "d", str(tmp_path / "a2"))
    link = pointer_path(tmp_path, "d")
    assert link.is_symlink() and link.resolve() == (tmp_path / "a2").resolve()
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["promoted"]
