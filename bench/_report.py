"""Where every benchmark's figures go: ``bench/results/<name>.json``, and one JSON line printed last."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def stamp() -> dict:
    """The commit and machine a figure was measured on (every results file carries them)."""
    root = Path(__file__).resolve().parent.parent
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
    try:
        import torch

        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:
        device = "unknown"
    return {"commit": commit.stdout.strip() or None,
            "machine": {"device": device, "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                        "loadavg_1m_start": round(os.getloadavg()[0], 2)}}


def save(name: str, data: dict, indent: int = 2) -> Path:
    """Write ``data`` to ``bench/results/<name>.json`` (also for partial results while a bench runs), with the
    commit and machine of ``stamp()`` unless the bench recorded its own."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    if isinstance(data, dict):
        data = {**stamp(), **data}
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(data, indent=indent) + "\n")
    return out


def report(name: str, figures: dict, stored: dict | None = None, indent: int = 2) -> None:
    """Save ``stored`` (default: ``figures``) as the bench's results file, then print ``figures`` as one JSON line."""
    save(name, figures if stored is None else stored, indent)
    print(json.dumps(figures))
