"""A recognisable fake API key never reaches DuckDB, logs, artifacts, Prefect's database or error messages —
even when the teacher server quotes it back in its error bodies."""

from __future__ import annotations

import json
import uuid

import pytest

from reliability.helpers import (
    HostileMockTeacher,
    cli,
    cli_env,
    configs_copy,
    files_containing,
    last_json,
    write_domain,
)
from schemas.run import Home
from tasks import store

pytestmark = pytest.mark.slow
DOMAIN = "rel-secrets"


def test_fake_api_key_is_absent_from_every_byte_the_runs_leave_behind(tmp_path):
    secret = uuid.uuid4().hex                      # the part no other string contains
    key, wrong_key = f"sk-lf-FAKE-{secret}", f"sk-lf-WRONG-{uuid.uuid4().hex}"
    configs = configs_copy(tmp_path / "configs")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    with HostileMockTeacher(require_api_key=key, echo_every=7) as server:
        write_domain(configs, DOMAIN, set_keys={
            "teacher.provider": "openai", "teacher.model": "mock-teacher", "teacher.base_url": server.base_url,
            "teacher.api_key_env": "LF_REL_TEACHER_KEY", "teacher.batch_size": 100, "teacher.max_retries": 2},
            tiny={"dataset.n_requests": 120})
        env = cli_env(tmp_path, LORAFORGE_CONFIGS=str(configs), LF_REL_TEACHER_KEY=key)
        env.pop("PREFECT_API_URL", None)  # its own Prefect server and home: their bytes are searched for the key too
        home = Home.from_env(env["LORAFORGE_HOME"])

        # a wrong key first (every request answered 401, quoting the key), then the right one
        bad = cli("run", "--domain", DOMAIN, "--profile", "tiny", "--json", env={**env, "LF_REL_TEACHER_KEY":
                                                                                  wrong_key}, cwd=cwd)
        home_after_bad = sum(store.doctor_find_text(home.db, "Incorrect API key").values())
        good = cli("run", "--domain", DOMAIN, "--profile", "tiny", "--json", env=env, cwd=cwd)
        assert good.returncode == 0, good.stderr[-3000:]
        run = last_json(good.stdout)
        reads = [cli(*args, env=env, cwd=cwd) for args in (("runs", "ls", "--json"), ("runs", "show", run["run_id"]),
                                                          ("adapters", "ls", "--json"), ("doctor", "--json"))]

    # the key was really used, and the hostile server really quoted it back
    assert run["status"] == "completed" and run["counts"]["accepted"] > 0
    assert bad.returncode == 1 and "run failed" in bad.stderr, bad.stderr[-3000:]
    assert server.echoed > 120  # 120 401s quoting the wrong key, then 400/500s quoting the right one
    assert sum(store.doctor_find_text(home.db, "Authorization=").values()) > 0  # echoed errors were recorded
    assert home_after_bad > 0  # the 401s were recorded (scrubbed) before the good run replaced them with ok

    # two whole pipeline runs wrote only into $LORAFORGE_HOME and PREFECT_HOME: the cwd stays empty
    assert list(cwd.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs", "cwd", "home", "prefect"]

    outputs = [good, bad, *reads]
    roots = [home.root, tmp_path / "prefect", cwd]
    planted = tmp_path / "prefect" / "positive-control.txt"   # the search itself must be able to find it
    planted.write_bytes(b"xx" + key.encode() + b"xx")
    assert files_containing(roots, secret.encode()) == [str(planted)]
    planted.unlink()
    for needle in (key, secret, secret[:12], wrong_key, wrong_key[-32:]):
        assert files_containing(roots, needle.encode()) == [], needle
        assert all(needle not in p.stdout + p.stderr for p in outputs), needle
        assert sum(store.doctor_find_text(home.db, needle).values()) == 0, needle  # through DuckDB's compression
    print("RELIABILITY " + json.dumps({
        "scenario": "secrets", "files_searched": sum(1 for r in roots for _ in r.rglob("*")),
        "bytes_searched": sum(p.stat().st_size for r in roots for p in r.rglob("*") if p.is_file()),
        "log_bytes": sum(len(p.stdout) + len(p.stderr) for p in outputs), "hostile_echoes": server.echoed,
        "hits": 0}))
