"""Cost control: the dry-run estimate spends nothing; a hard cap ends the run `budget_exhausted`, work kept."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from schemas.config import load_domain
from tasks import store
from tasks.generate import estimate_generation
from tasks.teacher.mock_server import MockTeacherServer

ROOT = Path(__file__).resolve().parents[1]
PRICES = {"mock-teacher": {"input_per_1k": 0.15, "output_per_1k": 0.6}}


def _teacher_overrides(base_url: str) -> dict:
    return {"teacher.provider": "openai", "teacher.model": "mock-teacher", "teacher.base_url": base_url,
            "teacher.prices": PRICES, "teacher.batch_size": 60, "teacher.concurrency": 8,
            "dataset.n_requests": 200}


def test_dry_run_prints_requests_tokens_and_cost_and_sends_nothing(tmp_path, home):
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    path = configs / "domains" / "regex-python.yaml"
    data = yaml.safe_load(path.read_text())
    with MockTeacherServer() as srv:
        data["teacher"].update(provider="openai", model="mock-teacher", base_url=srv.base_url, prices=PRICES)
        path.write_text(yaml.safe_dump(data))
        env = {**os.environ, "LORAFORGE_CONFIGS": str(configs), "LORAFORGE_HOME": str(home.root)}
        p = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--domain", "regex-python", "--profile", "quick",
                            "--dry-run", "--json"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
        received = srv.requests_received
    assert p.returncode == 0, p.stderr[-2000:]
    plan = json.loads(p.stdout.strip().splitlines()[-1])
    assert plan["teacher"] == "openai" and plan["requests"] == plan["requests_to_send"] == 1000
    assert plan["estimated_prompt_tokens"] > 0 and plan["estimated_completion_tokens"] > 0
    assert plan["estimated_cost_usd"] > 0 and plan["estimate"]["cost_usd_upper_bound"] > plan["estimated_cost_usd"]
    assert received == 0 and not home.db.exists()


@pytest.mark.slow
def test_a_cap_at_30_percent_of_the_estimate_stops_at_or_below_it_and_keeps_a_usable_snapshot(home, prefect_harness):
    from flows.pipeline import distill_to_adapter

    with MockTeacherServer() as srv:
        overrides = _teacher_overrides(srv.base_url)
        estimate = estimate_generation(load_domain("regex-python", "tiny", overrides))
        cap = round(0.3 * estimate["cost_usd"], 6)
        summary = distill_to_adapter(domain="regex-python", profile="tiny", home=str(home.root),
                                     overrides={**overrides, "teacher.max_cost_usd": cap})
        received = srv.requests_received
    run_id, c = summary["run_id"], summary["counts"]
    assert summary["status"] == "budget_exhausted" and summary["error"] is None
    assert store.get_run(home.db, run_id)["status"] == "budget_exhausted"

    # spent at or below the cap, on exactly the requests that were sent
    planned = [p["request_hash"] for p in store.planned_requests(home.db, run_id)]
    calls = store.teacher_calls_summary(home.db, planned)
    spent = sum(v["cost_usd"] for v in calls.values())
    assert 0 < spent <= cap
    assert received == c["requested"] == len(planned) == sum(v["n"] for v in calls.values())

    # every planned request is in a stated place: asked (accepted | quarantined | failed) or unsent with a reason
    unsent = store.unsent_requests(home.db, run_id)
    assert c["requested"] == c["accepted"] + c["quarantined"] + c["failed"]
    assert c["requested"] + len(unsent) == 200 and len(unsent) > 0
    assert {u["reason"] for u in unsent} == {"budget_exhausted"}
    assert not set(planned) & {u["request_hash"] for u in unsent}

    # what was produced is validated and snapshotted: the next stage can train on it
    assert c["accepted"] > 0 and summary["dataset_id"]
    ds = store.get_dataset(home.db, summary["dataset_id"])
    assert ds["n_train"] + ds["n_val"] + ds["n_test"] == c["accepted"]
    manifest = json.loads(ds["manifest_json"])
    rows = sum(pq.read_table(Path(manifest["path"]) / f).num_rows for f in manifest["files"].values())
    assert rows == c["accepted"]
    assert summary["adapter"]["id"] is None  # no training was paid for on a capped run
    print("BUDGET " + json.dumps({"estimate_usd": estimate["cost_usd"], "cap_usd": cap, "spent_usd": round(spent, 6),
                                  "requested": c["requested"], "accepted": c["accepted"], "unsent": len(unsent)}))
    from tasks.doctor import check_home  # issue 9: `loraforge doctor` finds the store consistent afterwards

    assert check_home(home)["ok"]
