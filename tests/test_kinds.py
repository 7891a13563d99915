"""The task-kind seam: one registry resolves ``task.kind``, the domain file is validated with the kind's own keys,
and the store keeps a kind's values as JSON (the first kind's old columns moved there, rows kept)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from schemas.config import ConfigError, load_domain, parse_domain, validate_config
from tasks import store
from tasks.kinds import DEFAULT_KIND, GROUP, Kind, KindError, get_kind, known_kinds

REPO = Path(__file__).resolve().parents[1]
DOMAIN_FILE = REPO / "configs" / "domains" / "regex-python.yaml"


def test_the_regex_kind_is_registered_and_resolves_to_one_kind_object():
    kind = get_kind("regex")
    assert isinstance(kind, Kind) and kind.name == "regex" and get_kind(DEFAULT_KIND) is kind
    assert "regex" in known_kinds()


def test_the_entry_point_group_declares_the_regex_kind():
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    assert eps.get("regex") == "tasks.kinds.regex:KIND", "run `.venv/bin/pip install -e . --no-deps` after editing"


def test_a_checkout_without_the_entry_point_still_finds_a_built_in_kind(monkeypatch):
    from tasks.kinds import base

    monkeypatch.setattr(base, "_entry_points", lambda: {})
    base.get_kind.cache_clear()
    try:
        assert base.get_kind("regex").name == "regex"
    finally:
        base.get_kind.cache_clear()


@pytest.mark.parametrize("name", ["perl", "../regex", ""])
def test_an_unknown_kind_fails_naming_the_known_ones(name):
    with pytest.raises(KindError, match="known kinds: .*regex"):
        get_kind(name)


def test_a_domain_file_with_an_unknown_kind_fails_at_load_time_with_the_key():
    data = yaml.safe_load(DOMAIN_FILE.read_text())
    data["task"]["kind"] = "perl"
    with pytest.raises(ConfigError) as e:
        parse_domain(data, source="regex-python.yaml")
    assert "regex-python.yaml" in str(e.value) and "task.kind" in str(e.value) and "regex" in str(e.value)


def test_the_kind_s_keys_are_checked_in_their_sections_and_a_typo_names_the_key():
    cfg = load_domain("regex-python", "tiny")
    assert isinstance(cfg, get_kind("regex").config_model)
    assert (cfg.task.dialect, cfg.validation.max_regex_length, cfg.gate.min_compile_rate) == ("python", 200, 0.9)
    data = yaml.safe_load(DOMAIN_FILE.read_text())
    data["validation"]["max_regex_lenght"] = 10
    with pytest.raises(ConfigError, match=r"validation\.max_regex_lenght: unknown key"):
        parse_domain(data)


def test_a_run_s_stored_config_comes_back_as_its_kind_s_model():
    cfg = load_domain("regex-re2", "tiny")
    back = validate_config(json.loads(cfg.model_dump_json()))
    assert type(back) is type(cfg) and back == cfg


def test_generic_modules_import_no_kind_package():
    """The seam's shape: the generic code asks the registry; it imports no kind's package by name."""
    code = ("import sys, schemas.config, tasks.validate, tasks.evaluate, tasks.registry, tasks.generate, tasks.store, "
            "tasks.dataset; print(sorted(m.split('.')[2] for m in sys.modules if m.startswith('tasks.kinds.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert set(ast.literal_eval(out.stdout)) <= {"base"}  # the interface at most, no kind's package


def test_an_old_store_s_regex_columns_move_into_kind_json_with_their_rows(tmp_path):
    import duckdb

    db = tmp_path / "loraforge.duckdb"
    with duckdb.connect(str(db)) as con:  # a file at schema version 1: the regex kind's values as columns
        con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)")
        con.execute(store.MIGRATIONS[0])
        con.execute("INSERT INTO schema_version VALUES (1, now())")
        con.execute("INSERT INTO examples (example_id, prompt, completion, positives, negatives, split) VALUES"
                    " ('e1', 'p', '\\d+', ['1', '22'], ['a'], 'test')")
        con.execute("INSERT INTO evaluation_items (eval_id, example_id, semantic_ok, compiled, equivalence,"
                    " n_distinguishing, redos, excluded) VALUES ('ev', 'e1', true, true, 'equivalent', 0, NULL, false),"
                    " ('ev', 'e2', NULL, NULL, NULL, NULL, NULL, true)")
    assert store.schema_version(db) == 1
    store.init_db(db)
    assert store.schema_version(db) == len(store.MIGRATIONS)
    [ex] = store.examples_by_id(db, ["e1"]).to_pylist()
    assert "positives" not in ex and json.loads(ex["kind_json"]) == {"positives": ["1", "22"], "negatives": ["a"]}
    items = {r["example_id"]: r for r in store.evaluation_items(db, "ev")}
    assert json.loads(items["e1"]["kind_json"]) == {"compiled": True, "equivalence": "equivalent",
                                                    "n_distinguishing": 0, "redos": None}
    assert items["e2"]["kind_json"] is None and "compiled" not in items["e1"]


def test_stored_examples_and_snapshots_carry_the_kind_s_values_back_to_evaluation_items(tmp_path):
    from tasks import dataset

    table = pa.Table.from_pylist([{"example_id": f"e{i}", "prompt": "p", "completion": "x", "description": "d",
                                   "topic": "t", "split": "test", "kind_json": json.dumps({"positives": [str(i)]})}
                                  for i in range(3)])
    m = dataset.write_snapshot(table, "regex-python", tmp_path)
    rows = dataset.item_rows(dataset.read_split(m["path"], "test"))
    assert [r["positives"] for r in rows] == [["0"], ["1"], ["2"]] and "kind_json" not in rows[0]
