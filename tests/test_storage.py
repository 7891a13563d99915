"""Snapshots (and any directory) can be published to an fsspec URL; the local default path stays as it was."""

from __future__ import annotations

import json
import uuid

import fsspec
import pyarrow as pa

from tasks import dataset, storage


def _examples(n: int = 12) -> pa.Table:
    splits = ["train"] * (n - 4) + ["val", "val", "test", "test"]
    return pa.Table.from_pylist([
        {"example_id": f"ex-{i:03d}", "prompt": f"regex: {i} digits\n", "completion": f"\\d{{{i}}}",
         "description": f"{i} digits", "positives": ["1"], "negatives": ["a"], "topic": "text", "split": splits[i]}
        for i in range(n)
    ])


def test_default_snapshot_is_local_only_at_the_same_path(tmp_path, monkeypatch):
    monkeypatch.delenv("LORAFORGE_STORAGE_URL", raising=False)
    m = dataset.write_snapshot(_examples(), "regex-python", tmp_path / "datasets")
    assert m["path"] == str(tmp_path / "datasets" / m["dataset_id"]) and "uri" not in m
    assert storage.storage_url(None) is None


def test_snapshot_published_to_a_memory_url_reads_back_identically(tmp_path):
    url = f"memory://lf-{uuid.uuid4().hex[:8]}"
    m = dataset.write_snapshot(_examples(), "regex-python", tmp_path / "datasets", storage_url=url)
    assert m["uri"] == f"{url}/datasets/{m['dataset_id']}"
    fs = fsspec.filesystem("memory")
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.find(m["uri"].removeprefix("memory://")))
    assert names == ["manifest.json", "test.parquet", "train.parquet", "val.parquet"]
    with fsspec.open(f"{m['uri']}/manifest.json", "r") as f:
        assert json.load(f)["dataset_id"] == m["dataset_id"]
    for split in dataset.SPLITS:
        assert dataset.read_split(m["uri"], split).equals(dataset.read_split(m["path"], split))
    # idempotent: the same snapshot again changes nothing and keeps the uri
    assert dataset.write_snapshot(_examples(), "regex-python", tmp_path / "datasets", storage_url=url) == m


def test_snapshot_published_to_a_file_url(tmp_path):
    shared = tmp_path / "shared"
    m = dataset.write_snapshot(_examples(), "regex-python", tmp_path / "datasets", storage_url=f"file://{shared}")
    published = shared / "datasets" / m["dataset_id"]
    assert sorted(p.name for p in published.iterdir()) == ["manifest.json", "test.parquet", "train.parquet",
                                                            "val.parquet"]
    assert json.loads((published / "manifest.json").read_text())["uri"] == f"file://{published}"
    assert dataset.read_split(f"file://{published}", "train").num_rows == 8


def test_an_existing_local_snapshot_is_published_when_a_url_is_configured_later(tmp_path):
    m = dataset.write_snapshot(_examples(), "regex-python", tmp_path / "datasets")
    url = f"memory://lf-{uuid.uuid4().hex[:8]}"
    again = dataset.write_snapshot(_examples(), "regex-python", tmp_path / "datasets", storage_url=url)
    assert again["dataset_id"] == m["dataset_id"] and storage.exists(f"{again['uri']}/train.parquet")


def test_directories_round_trip_and_the_environment_url_wins(tmp_path, monkeypatch):
    src = tmp_path / "adapter"
    (src / "sub").mkdir(parents=True)
    (src / "adapter_config.json").write_text("{}")
    (src / "sub" / "weights.bin").write_bytes(b"\x00\x01")
    url = storage.put_dir(src, f"memory://lf-{uuid.uuid4().hex[:8]}/adapters/regex-python/ad-1")
    back = storage.get_dir(url, tmp_path / "copy")
    assert (back / "sub" / "weights.bin").read_bytes() == b"\x00\x01" and (back / "adapter_config.json").exists()

    class Cfg:  # the domain config's dataset section, as far as storage_url cares
        class dataset:  # noqa: N801
            storage_url = "file:///from/config/"
    assert storage.storage_url(Cfg) == "file:///from/config"
    monkeypatch.setenv("LORAFORGE_STORAGE_URL", "memory://from-env")
    assert storage.storage_url(Cfg) == "memory://from-env"
