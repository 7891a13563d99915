"""Where every benchmark's figures go: ``bench/results/<name>.json``, and one JSON line printed last."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def save(name: str, data: dict, indent: int = 2) -> Path:
    """Write ``data`` to ``bench/results/<name>.json`` (also for partial results while a bench runs)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(data, indent=indent) + "\n")
    return out


def report(name: str, figures: dict, stored: dict | None = None, indent: int = 2) -> None:
    """Save ``stored`` (default: ``figures``) as the bench's results file, then print ``figures`` as one JSON line."""
    save(name, figures if stored is None else stored, indent)
    print(json.dumps(figures))
