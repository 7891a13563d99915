"""Where snapshots and adapters are published: the local ``$LORAFORGE_HOME`` (default) plus, when asked, any
fsspec URL — ``s3://bucket/loraforge``, ``gs://…``, ``file:///shared/loraforge``, ``memory://…`` (tests).

The local copy stays the working copy (training and evaluation read it, so the default path is unchanged);
the URL is the shared, durable copy a GPU host or a teammate reads. The URL comes from ``LORAFORGE_STORAGE_URL``
or the domain's ``dataset.storage_url`` (the environment wins). Layout under the URL mirrors the home:
``<url>/datasets/<dataset_id>/…`` and ``<url>/adapters/<domain>/<adapter_id>/…``.

Imports only fsspec, so the GPU host's training code can use it without Prefect or DuckDB.
"""

from __future__ import annotations

import os
from pathlib import Path

import fsspec
from fsspec.core import url_to_fs


def storage_url(cfg=None) -> str | None:
    """The configured publishing URL, or None for local-only (the default)."""
    url = os.environ.get("LORAFORGE_STORAGE_URL") or (
        getattr(getattr(cfg, "dataset", None), "storage_url", None) if cfg is not None else None)
    return url.rstrip("/") if url else None


def is_url(path: str | Path) -> bool:
    return "://" in str(path)


def join(url: str, *parts: str) -> str:
    return "/".join([url.rstrip("/"), *(p.strip("/") for p in parts)])


def put_dir(local_dir: str | Path, url: str) -> str:
    """Copy every file under ``local_dir`` to ``url`` (same relative paths); returns ``url``.

    Files are written first and ``manifest.json`` / ``metrics.json`` last, so a reader that sees the manifest
    sees a complete directory."""
    fs, root = url_to_fs(url)
    local_dir = Path(local_dir)
    files = sorted((p for p in local_dir.rglob("*") if p.is_file()),
                   key=lambda p: p.name in ("manifest.json", "metrics.json"))
    for p in files:
        target = root.rstrip("/") + "/" + p.relative_to(local_dir).as_posix()
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(p), target)
    return url


def get_dir(url: str, local_dir: str | Path) -> Path:
    """Copy every file under ``url`` into ``local_dir`` (e.g. a snapshot onto a GPU host); returns the dir."""
    fs, root = url_to_fs(url)
    local_dir = Path(local_dir)
    root = root.rstrip("/")
    for remote in fs.find(root):
        rel = remote[len(root):].lstrip("/")
        dest = local_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(remote, str(dest))
    return local_dir


def exists(url: str) -> bool:
    fs, root = url_to_fs(url)
    return fs.exists(root)


def open_file(path: str | Path, mode: str = "rb"):
    """Open a local path or an fsspec URL."""
    return fsspec.open(str(path), mode).open()
