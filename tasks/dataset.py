"""Dataset snapshots: the accepted examples of a run, split by content hash, frozen as Parquet + manifest.

``dataset_id`` is a hash of the domain and the (example id, split) pairs, so the same inputs always give
the same id and the same files. The GPU worker reads only these files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas.example import content_hash
from tasks import storage

SPLITS = ("train", "val", "test")
# the kind's own values of an example (e.g. its example strings) travel in kind_json; a snapshot written before the
# kind seam has them as columns instead, and ``item_rows`` reads both
# (``labels_json``: the example's slice labels; ``answers_failure``: the failure a focused example answers)
COLUMNS = ["example_id", "prompt", "completion", "description", "topic", "kind_json", "labels_json", "answers_failure"]


def dataset_id_of(domain: str, examples: pa.Table) -> str:
    pairs = sorted(zip(examples["example_id"].to_pylist(), examples["split"].to_pylist(), strict=True))
    return "ds-" + content_hash("dataset", domain, pairs, n=16)


def write_snapshot(examples: pa.Table, domain: str, datasets_dir: Path, storage_url: str | None = None,
                   lineage: dict | None = None) -> dict:
    """Write train/val/test Parquet files and a manifest; returns the manifest (idempotent).

    With ``storage_url`` (an fsspec URL, see tasks/storage.py) the snapshot is also published to
    ``<storage_url>/datasets/<dataset_id>/`` and the manifest records that ``uri``. ``lineage`` (a focused run's:
    which champion, union or continue, how many examples from where) is recorded in the manifest as it is."""
    if examples.num_rows == 0:
        raise ValueError(f"no accepted examples for domain {domain!r}: nothing to snapshot")
    dataset_id = dataset_id_of(domain, examples)
    out = Path(datasets_dir) / dataset_id
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        return _publish(json.loads(manifest_path.read_text()), out, storage_url)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True, exist_ok=True)
    ordered = examples.sort_by("example_id")
    columns = [c for c in COLUMNS if c in ordered.column_names]
    counts = {}
    for split in SPLITS:
        part = ordered.filter(pc.equal(ordered["split"], split)).select(columns)
        pq.write_table(part, tmp / f"{split}.parquet")
        counts[split] = part.num_rows
    manifest = {
        "dataset_id": dataset_id, "domain": domain, "path": str(out), "counts": counts,
        "files": {s: f"{s}.parquet" for s in SPLITS}, "columns": columns, **({"lineage": lineage} if lineage else {}),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if out.exists():  # a partial snapshot from a crashed run: replace it
        shutil.rmtree(out)
    tmp.replace(out)
    return _publish(manifest, out, storage_url)


def _publish(manifest: dict, local_dir: Path, storage_url: str | None) -> dict:
    """Copy the snapshot to ``<storage_url>/datasets/<id>/`` (once per URL); the manifest records the uri."""
    if not storage_url:
        return manifest
    uri = storage.join(storage_url, "datasets", manifest["dataset_id"])
    if manifest.get("uri") == uri and storage.exists(storage.join(uri, "manifest.json")):
        return manifest
    manifest = {**manifest, "uri": uri}
    (local_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    storage.put_dir(local_dir, uri)
    return manifest


def read_split(dataset_dir: str | Path, split: str) -> pa.Table:
    """One split of a snapshot, from a local directory or an fsspec URL."""
    if storage.is_url(dataset_dir):
        with storage.open_file(storage.join(str(dataset_dir), f"{split}.parquet")) as f:
            return pq.read_table(f)
    return pq.read_table(Path(dataset_dir) / f"{split}.parquet")


def item_rows(table: pa.Table) -> list[dict]:
    """A split's rows as dicts with the kind's values (``kind_json``) spread into them, as evaluation items read
    them; a snapshot from before the kind seam holds those values as columns already. A snapshot with slice labels
    gives each row ``labels`` (its topic and ``labels_json``)."""
    rows = table.to_pylist()
    for r in rows:
        r.update(json.loads(r.pop("kind_json", None) or "{}"))
        if "labels_json" in r:
            r["labels"] = {"topic": r.get("topic"), **json.loads(r.pop("labels_json") or "{}")}
    return rows
