"""Reruns: a new run reuses everything its parent stored before the --from stage and runs the rest."""

from __future__ import annotations

import uuid

import fsspec
import pytest

from flows._common import RunPlan, UnknownRunError, plan_run, rerun_config
from schemas.config import ConfigError, load_domain, parse_sets
from tasks import store


def test_set_values_are_parsed_as_yaml_scalars():
    assert parse_sets(["training.sft.learning_rate=1e-3", "training.sft.max_steps=4",
                       "gate.max_mean_output_tokens=null", "teacher.provider=openai",
                       "training.lora.target_modules=[q_proj, v_proj]", "x.flag=true"]) == {
        "training.sft.learning_rate": 1e-3, "training.sft.max_steps": 4, "gate.max_mean_output_tokens": None,
        "teacher.provider": "openai", "training.lora.target_modules": ["q_proj", "v_proj"], "x.flag": True}
    with pytest.raises(ValueError, match="dotted.key=value"):
        parse_sets(["no-equals-sign"])


def test_rerun_config_keeps_the_parents_values_and_applies_only_the_overrides():
    parent = load_domain("regex-python", "tiny", {"dataset.n_requests": 120}).model_dump(mode="json")
    cfg = rerun_config(parent, {"training.sft.max_steps": 3}, "run p")
    assert cfg.dataset.n_requests == 120  # the tiny profile is not re-applied over the parent's own override
    assert cfg.training.sft.max_steps == 3 and cfg.profiles == load_domain("regex-python").profiles
    with pytest.raises(ConfigError, match="learning_rat"):
        rerun_config(parent, {"training.sft.learning_rat": 1e-3}, "run p")


def test_plan_names_unknown_runs_and_impossible_stage_ranges(home):
    with pytest.raises(UnknownRunError, match="unknown run 'nope'"):
        plan_run(home, "regex-python", "tiny", {}, run_id=None, parent_run_id="nope", from_stage="train",
                 to_stage="promote")
    with pytest.raises(UnknownRunError, match="needs a stored run"):
        plan_run(home, "regex-python", "tiny", {}, run_id=None, parent_run_id=None, from_stage="train",
                 to_stage="promote")
    with pytest.raises(ValueError, match="comes after"):
        plan_run(home, "regex-python", "tiny", {}, run_id=None, parent_run_id=None, from_stage="train",
                 to_stage="generate")
    plan = RunPlan("r", load_domain("regex-python", "tiny"), "tiny", from_stage="train", to_stage="train")
    assert [s for s in ("generate", "validate", "snapshot") if plan.reuses(s)] == ["generate", "validate", "snapshot"]
    assert not plan.reuses("student") and not plan.beyond("train") and plan.beyond("evaluate")


def _refuse_teacher(monkeypatch):
    """Any attempt to build or call a teacher fails the test loudly."""
    def boom(*a, **k):
        raise AssertionError("the teacher was called")
    import flows.generate
    import tasks.generate
    from tasks.teacher.grammar_teacher import GrammarTeacher

    monkeypatch.setattr(flows.generate, "make_teacher", boom)
    monkeypatch.setattr(tasks.generate, "make_teacher", boom)
    monkeypatch.setattr(GrammarTeacher, "complete_batch", boom)


@pytest.mark.slow
def test_rerun_from_train_makes_no_teacher_call_and_reuses_the_snapshot(home, prefect_harness, monkeypatch):
    from flows.pipeline import distill_to_adapter

    parent = distill_to_adapter(domain="regex-python", profile="tiny", home=str(home.root),
                                overrides={"dataset.n_requests": 120})
    assert parent["status"] == "completed"
    n_calls, n_examples = store.table_count(home.db, "teacher_calls"), store.table_count(home.db, "examples")

    _refuse_teacher(monkeypatch)
    url = f"memory://lf-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("LORAFORGE_STORAGE_URL", url)  # the rerun also publishes its adapter there
    child = distill_to_adapter(home=str(home.root), parent_run_id=parent["run_id"], from_stage="train",
                               overrides={"training.sft.max_steps": 2})
    assert child["status"] == "completed" and child["run_id"] != parent["run_id"]
    assert store.table_count(home.db, "teacher_calls") == n_calls          # zero teacher calls
    assert store.table_count(home.db, "examples") == n_examples
    assert child["dataset_id"] == parent["dataset_id"]                      # the same snapshot
    assert child["counts"] == parent["counts"]
    assert child["adapter"]["id"] != parent["adapter"]["id"]                # a newly trained adapter
    row = store.get_run(home.db, child["run_id"])
    assert row["parent_run_id"] == parent["run_id"]
    stages = {s["stage"]: s for s in store.run_stages(home.db, child["run_id"])}
    assert {k: stages[k]["status"] for k in ("generate", "validate", "snapshot", "train", "evaluate", "promote")} == {
        "generate": "reused", "validate": "reused", "snapshot": "reused", "train": "completed",
        "evaluate": "completed", "promote": "completed"}
    assert stages["snapshot"]["source_run_id"] == parent["run_id"]
    adapter = store.get_adapter(home.db, child["adapter"]["id"])
    assert adapter["uri"] == f"{url}/adapters/regex-python/{adapter['adapter_id']}"
    fs = fsspec.filesystem("memory")
    assert fs.exists(adapter["uri"].removeprefix("memory://") + "/adapter_model.safetensors")
    assert store.get_dataset(home.db, child["dataset_id"])["run_id"] == parent["run_id"]

    # --from promote: the same adapter and evaluations, only the gate again (here with thresholds lowered)
    regate = distill_to_adapter(home=str(home.root), parent_run_id=child["run_id"], from_stage="promote",
                                overrides={"gate.min_semantic_accuracy": 0.0, "gate.min_compile_rate": 0.0,
                                           "gate.max_mean_output_tokens": None})
    assert regate["adapter"]["id"] == child["adapter"]["id"] and regate["eval"]["candidate"] is not None
    assert {s["stage"]: s["status"] for s in store.run_stages(home.db, regate["run_id"])}["evaluate"] == "reused"
    assert store.table_count(home.db, "teacher_calls") == n_calls
    assert all(v == 0 for v in store.integrity_report(home.db).values()), store.integrity_report(home.db)


@pytest.mark.slow
def test_stage_by_stage_run_and_rerun_from_validate_send_nothing(home, prefect_harness, monkeypatch):
    from flows.pipeline import distill_to_adapter

    first = distill_to_adapter(domain="regex-python", profile="tiny", home=str(home.root), to_stage="generate",
                               overrides={"dataset.n_requests": 60})
    assert first["status"] == "partial" and first["dataset_id"] is None
    pending = store.table_count(home.db, "run_requests", "WHERE run_id = ? AND outcome = 'pending'", [first["run_id"]])
    assert pending == 60
    n_calls = store.table_count(home.db, "teacher_calls")
    assert n_calls == 60
    _refuse_teacher(monkeypatch)
    validated = distill_to_adapter(run_id=first["run_id"], home=str(home.root), from_stage="validate",
                                   to_stage="validate")
    c = validated["counts"]
    assert validated["status"] == "partial" and c["requested"] == 60 == c["accepted"] + c["quarantined"] + c["failed"]
    again = distill_to_adapter(home=str(home.root), parent_run_id=first["run_id"], from_stage="validate",
                               to_stage="snapshot")
    assert again["counts"] == c and again["dataset_id"]
    assert store.table_count(home.db, "teacher_calls") == n_calls
    assert store.get_run(home.db, again["run_id"])["parent_run_id"] == first["run_id"]
