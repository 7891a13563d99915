"""kill -9 of a running pipeline mid-generation: the rerun completes, pays for nothing it already stored,
duplicates nothing and builds the same dataset as an uninterrupted run with the same seed."""

from __future__ import annotations

import json

import pytest

from reliability.helpers import cli, cli_env, configs_copy, kill_cli_after, last_json, write_domain
from schemas.run import Home
from tasks import store
from tasks.doctor import check_home
from tasks.teacher.mock_server import MockTeacherServer, request_key

pytestmark = pytest.mark.slow
DOMAIN = "rel-crash"
KILL_AFTER = 120  # requests received by the teacher; answers stored every 10 → ~100 stored, some in flight


def _openai_domain(tmp_path, server) -> dict[str, str]:
    configs = configs_copy(tmp_path / "configs")
    # the shipped batch size (the whole tiny run is one Prefect task): what a kill keeps is what the task had
    # stored while it ran, every teacher.store_every answers
    write_domain(configs, DOMAIN, set_keys={
        "teacher.provider": "openai", "teacher.model": "mock-teacher", "teacher.base_url": server.base_url,
        "teacher.api_key_env": "LF_REL_UNSET_KEY", "teacher.concurrency": 4, "teacher.store_every": 10,
        "teacher.max_retries": 2})
    return cli_env(tmp_path, LORAFORGE_CONFIGS=str(configs))


def _stored_ok_keys(home: Home) -> set[str]:
    """The wire identity of every request whose ``ok`` response is stored in DuckDB."""
    return {request_key(json.loads(r)["messages"]) for r in store.doctor_teacher_requests(home.db, "ok").values()}


def _reference_dataset_id(tmp_path, env: dict[str, str], monkeypatch) -> str:
    """The same domain, same seed, same teacher, generated without interruption (in-process, stages 1-3)."""
    from flows.generate import generate_examples
    from flows.validate import snapshot_dataset, validate_examples
    from schemas.config import load_domain

    monkeypatch.setenv("LORAFORGE_CONFIGS", env["LORAFORGE_CONFIGS"])
    ref = Home.from_env(tmp_path / "reference-home")
    cfg = load_domain(DOMAIN, "tiny")
    store.create_run(ref.db, "reference", DOMAIN, "tiny", "openai", cfg.model_dump(mode="json"))
    generate_examples("reference", home=str(ref.root))
    validate_examples("reference", home=str(ref.root))
    return snapshot_dataset("reference", home=str(ref.root))["dataset_id"]


def test_kill_9_mid_generation_then_rerun_resends_nothing_stored_and_rebuilds_the_same_dataset(
        tmp_path, prefect_harness, monkeypatch):
    with MockTeacherServer(latency_s=0.1) as server:
        env = _openai_domain(tmp_path, server)
        home = Home.from_env(env["LORAFORGE_HOME"])

        # 1. start the whole pipeline in its own process group and kill -9 the group mid-generation
        kill_cli_after(["run", "--domain", DOMAIN, "--profile", "tiny", "--json"], env, server, KILL_AFTER,
                       tmp_path / "killed-run.log")
        received_before, delivered_before = dict(server.received), dict(server.delivered)

        stored = _stored_ok_keys(home)
        assert 0 < len(stored) < 300, f"the kill did not land mid-generation ({len(stored)} stored)"
        in_flight = set(received_before) - stored
        assert stored <= set(delivered_before)  # what is stored was delivered (sanity of the two counters)
        report = check_home(home)
        assert report["ok"], report  # the killed run's rows are consistent (it is listed as interrupted)
        assert "1 run(s) still 'running'" in next(c for c in report["checks"] if c["name"] == "interrupted_runs")[
            "detail"]

        # 2. rerun: completes, sends only what was not stored
        server.reset_counters()
        p = cli("run", "--domain", DOMAIN, "--profile", "tiny", "--json", env=env)
        assert p.returncode == 0, p.stderr[-3000:]
        run = last_json(p.stdout)
        resent_stored = stored & set(server.received)
        assert not resent_stored, f"{len(resent_stored)} stored responses were paid for twice"
        assert len(server.received) == 300 - len(stored)
        assert all(n == 1 for n in server.received.values())
        assert run["status"] == "completed"
        assert run["counts"] == {"requested": 300, "accepted": run["counts"]["accepted"], "quarantined":
                                 run["counts"]["quarantined"], "failed": 0}

        # 3. no duplicate rows; doctor passes; same dataset as an uninterrupted run
        assert store.table_count(home.db, "teacher_calls") == 300
        assert store.table_count(home.db, "run_requests", "WHERE run_id = ?", [run["run_id"]]) == 300
        assert store.table_count(home.db, "examples") == run["counts"]["accepted"]
        doctor = cli("doctor", "--json", env=env)
        assert doctor.returncode == 0 and last_json(doctor.stdout)["ok"], doctor.stdout[-3000:]
        sent_on_rerun, rerun_keys = sum(server.received.values()), set(server.received)
        reference = _reference_dataset_id(tmp_path, env, monkeypatch)
        assert run["dataset_id"] == reference

    print("RELIABILITY " + json.dumps({
        "scenario": "kill -9 mid-generation", "received_before_kill": sum(received_before.values()),
        "stored_before_kill": len(stored), "in_flight_at_kill": len(in_flight),
        "delivered_not_stored_at_kill": len(set(delivered_before) - stored),
        "sent_on_rerun": sent_on_rerun, "stored_resent": len(resent_stored),
        "in_flight_resent": len(in_flight & rerun_keys), "dataset_id": run["dataset_id"],
        "reference_dataset_id": reference}))
