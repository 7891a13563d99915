"""The registry: one promoted adapter per domain, a pointer that always ends up agreeing with DuckDB (even after
a crash between the two), forced promotions recorded as such, and rollback to the previous champion."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tasks import registry, store
from tasks.registry import (
    RegistryError,
    apply_decision,
    forced_decision,
    move_pointer,
    pointer_path,
    read_pointer,
    reconcile,
    rollback,
)

DOMAIN = "regex-python"
PASS = {"promote": True, "checks": [], "failed": [], "reasons": [], "bootstrap": None, "forced": False}
FAIL = {**PASS, "promote": False, "failed": ["min_semantic_accuracy"], "reasons": ["min_semantic_accuracy: …"]}


def adapter(home, name: str) -> dict:
    path = home.adapters / DOMAIN / name
    path.mkdir(parents=True)
    row = {"adapter_id": name, "domain": DOMAIN, "run_id": f"run-{name}", "dataset_id": "ds", "base_model": "m",
           "path": str(path), "status": "candidate"}
    store.record_adapter(home.db, row)
    return row


def promoted_ids(home) -> list[str]:
    return [a["adapter_id"] for a in store.list_adapters(home.db, DOMAIN) if a["status"] == "promoted"]


def consistent(home) -> bool:
    ids = promoted_ids(home)
    target = read_pointer(home.adapters, DOMAIN)
    return len(ids) <= 1 and target == (store.get_adapter(home.db, ids[0])["path"] if ids else None)


def test_pointer_moves_atomically_to_the_new_champion(tmp_path):
    (tmp_path / "a1").mkdir()
    (tmp_path / "a2").mkdir()
    move_pointer(tmp_path, "d", str(tmp_path / "a1"))
    move_pointer(tmp_path, "d", str(tmp_path / "a2"))
    link = pointer_path(tmp_path, "d")
    assert link.is_symlink() and link.resolve() == (tmp_path / "a2").resolve()
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["promoted"]


def test_promotion_retires_the_old_champion_and_moves_the_pointer(home):
    a, b = adapter(home, "a"), adapter(home, "b")
    apply_decision(home.db, home.adapters, run_id="run-a", domain=DOMAIN, adapter=a, decision=PASS)
    p = apply_decision(home.db, home.adapters, run_id="run-b", domain=DOMAIN, adapter=b, decision=PASS)
    assert p["previous_adapter_id"] == "a" and p["decision"] == "promoted"
    assert promoted_ids(home) == ["b"] and store.get_adapter(home.db, "a")["status"] == "retired"
    assert consistent(home) and read_pointer(home.adapters, DOMAIN) == b["path"]


def test_rejection_leaves_the_champion_and_pointer_alone(home):
    a, b = adapter(home, "a"), adapter(home, "b")
    apply_decision(home.db, home.adapters, run_id="run-a", domain=DOMAIN, adapter=a, decision=PASS)
    p = apply_decision(home.db, home.adapters, run_id="run-b", domain=DOMAIN, adapter=b, decision=FAIL)
    assert p["decision"] == "rejected" and store.get_adapter(home.db, "b")["status"] == "rejected"
    assert promoted_ids(home) == ["a"] and read_pointer(home.adapters, DOMAIN) == a["path"]
    row = [r for r in store.promotion_history(home.db, DOMAIN) if r["adapter_id"] == "b"][0]
    assert json.loads(row["decision_json"])["failed"] == ["min_semantic_accuracy"]


def test_rerunning_the_same_gate_records_nothing_twice(home):
    a = adapter(home, "a")
    for _ in range(2):
        apply_decision(home.db, home.adapters, run_id="run-a", domain=DOMAIN, adapter=a, decision=PASS)
    assert store.table_count(home.db, "promotions") == 1


def test_forced_promotion_is_recorded_as_forced_with_its_reason(home):
    a, b = adapter(home, "a"), adapter(home, "b")
    apply_decision(home.db, home.adapters, run_id="run-a", domain=DOMAIN, adapter=a, decision=PASS)
    apply_decision(home.db, home.adapters, run_id="run-b", domain=DOMAIN, adapter=b,
                   decision=forced_decision("hotfix for ticket 42"), reason="hotfix for ticket 42", key="k1")
    row = store.promotion_history(home.db, DOMAIN)[-1]
    assert row["forced"] is True and row["reason"] == "hotfix for ticket 42" and row["decision"] == "promoted"
    assert promoted_ids(home) == ["b"] and consistent(home)
    with pytest.raises(RegistryError, match="--reason"):
        forced_decision("  ")


def test_rollback_restores_the_previous_champion_step_by_step(home):
    a, b, c = adapter(home, "a"), adapter(home, "b"), adapter(home, "c")
    for x in (a, b, c):
        apply_decision(home.db, home.adapters, run_id=x["run_id"], domain=DOMAIN, adapter=x, decision=PASS)
    r1 = rollback(home.db, home.adapters, DOMAIN)
    assert (r1["adapter_id"], r1["previous_adapter_id"], r1["decision"]) == ("b", "c", "rolled_back")
    assert promoted_ids(home) == ["b"] and store.get_adapter(home.db, "c")["status"] == "retired" and consistent(home)
    rollback(home.db, home.adapters, DOMAIN)  # b replaced a, so the next rollback restores a (not c again)
    assert promoted_ids(home) == ["a"] and consistent(home)
    with pytest.raises(RegistryError, match="no previous"):
        rollback(home.db, home.adapters, DOMAIN)
    assert promoted_ids(home) == ["a"]


def test_rollback_without_a_champion_is_a_clear_error(home):
    adapter(home, "a")
    with pytest.raises(RegistryError, match="no promoted adapter"):
        rollback(home.db, home.adapters, DOMAIN)


def test_reconcile_keeps_one_promoted_adapter_and_repoints(home):
    a, b = adapter(home, "a"), adapter(home, "b")
    apply_decision(home.db, home.adapters, run_id="run-a", domain=DOMAIN, adapter=a, decision=PASS)
    apply_decision(home.db, home.adapters, run_id="run-b", domain=DOMAIN, adapter=b, decision=PASS)
    # damage by hand: a second promoted row and a stale pointer
    store.record_registry_change(home.db, {"promotion_id": "hand", "domain": DOMAIN, "adapter_id": "a",
                                           "decision": "manual"}, status="promoted", retire_others=False)
    move_pointer(home.adapters, DOMAIN, a["path"])
    repairs = reconcile(home.db, home.adapters)
    assert repairs and promoted_ids(home) == ["b"] and consistent(home)
    assert reconcile(home.db, home.adapters) == []


CRASH = """
import sys
from schemas.run import Home
from tasks import registry, store
h = Home.from_env(sys.argv[1])
a = store.get_adapter(h.db, sys.argv[2])
registry.apply_decision(h.db, h.adapters, run_id=a["run_id"], domain=a["domain"], adapter=a,
                        decision={"promote": True, "checks": [], "failed": [], "reasons": [], "forced": False})
"""


def test_crash_between_registry_commit_and_pointer_move_is_consistent_after_the_next_command(home):
    a, b = adapter(home, "a"), adapter(home, "b")
    apply_decision(home.db, home.adapters, run_id="run-a", domain=DOMAIN, adapter=a, decision=PASS)
    env = {**os.environ, registry.CRASH_ENV: "registry:after-commit"}
    p = subprocess.run([sys.executable, "-c", CRASH, str(home.root), "b"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 70, p.stderr  # the process died right after the DuckDB commit
    assert promoted_ids(home) == ["b"] and read_pointer(home.adapters, DOMAIN) == a["path"]  # torn state
    # the next registry command (here `loraforge adapters ls`) reconciles the pointer from DuckDB first
    ls = subprocess.run([sys.executable, "-m", "flows.cli", "adapters", "ls", "--json", "--domain", DOMAIN],
                        env={**os.environ, "LORAFORGE_HOME": str(home.root)}, capture_output=True, text=True,
                        timeout=120)
    assert ls.returncode == 0, ls.stderr
    statuses = {r["id"]: r["status"] for r in json.loads(ls.stdout.splitlines()[-1])["adapters"]}
    assert statuses == {"a": "retired", "b": "promoted"}
    assert consistent(home) and read_pointer(home.adapters, DOMAIN) == b["path"]
