"""Generation scales out on a Dask LocalCluster (prefect-dask) and stores exactly what the default runner stores."""

from __future__ import annotations

import pytest

from flows._common import dask_requested, with_task_runner
from schemas.config import load_domain
from tasks import store


def test_dask_is_chosen_by_config_or_environment(monkeypatch):
    from prefect_dask import DaskTaskRunner

    from flows.generate import generate_examples

    monkeypatch.delenv("LORAFORGE_TASK_RUNNER", raising=False)
    cfg = load_domain("regex-python", "tiny")
    assert not dask_requested(cfg) and with_task_runner(generate_examples, cfg) is generate_examples
    dask_cfg = load_domain("regex-python", "tiny", {"teacher.task_runner": "dask"})
    assert isinstance(with_task_runner(generate_examples, dask_cfg).task_runner, DaskTaskRunner)
    monkeypatch.setenv("LORAFORGE_TASK_RUNNER", "dask")
    assert dask_requested(cfg)


@pytest.mark.slow
def test_generation_on_a_dask_local_cluster_stores_the_same_answers(tmp_path, prefect_harness, monkeypatch):
    from flows.pipeline import distill_to_adapter
    from schemas.run import Home

    monkeypatch.delenv("LORAFORGE_TASK_RUNNER", raising=False)
    overrides = {"dataset.n_requests": 80, "teacher.batch_size": 20}
    homes = {name: Home.from_env(tmp_path / name) for name in ("thread", "dask")}
    runs = {}
    for name, h in homes.items():
        runs[name] = distill_to_adapter(domain="regex-python", profile="tiny", home=str(h.root), to_stage="validate",
                                        overrides={**overrides, "teacher.task_runner": name})
    for name, h in homes.items():
        gen = {s["stage"]: s for s in store.run_stages(h.db, runs[name]["run_id"])}["generate"]
        assert gen["status"] == "completed" and gen["result"]["ok"] == 80, name
    assert runs["dask"]["counts"] == runs["thread"]["counts"]
    def answers(h):
        return sorted(store.load_teacher_calls(h.db, [p["request_hash"] for p in store.planned_requests(
            h.db, runs[h.root.name]["run_id"])]).items())
    dask_answers, thread_answers = answers(homes["dask"]), answers(homes["thread"])
    assert len(dask_answers) == 80
    assert [(k, v["status"], v["raw_response"]) for k, v in dask_answers] == [
        (k, v["status"], v["raw_response"]) for k, v in thread_answers]


def test_a_spending_cap_refuses_dask_with_a_clear_message():
    from flows.generate import answer_on_dask
    from tasks.teacher.limits import Budget

    with pytest.raises(ValueError, match="need the default task runner"):
        answer_on_dask(None, [], 10, "unused.duckdb", Budget(max_requests=5))
