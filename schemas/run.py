"""Run-level shapes: where state lives (``LORAFORGE_HOME``) and the run summary the CLI prints."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

RunStatus = Literal["completed", "failed", "budget_exhausted", "partial"]  # partial: a stage command stopped it
AdapterStatus = Literal["candidate", "promoted", "rejected", "retired"]
STAGES = ("generate", "validate", "snapshot", "train", "evaluate", "promote")


@dataclass(frozen=True)
class Home:
    """``$LORAFORGE_HOME`` (default ``./.loraforge``): the DuckDB file, datasets, adapters and models."""

    root: Path

    @classmethod
    def from_env(cls, root: str | Path | None = None) -> Home:
        return cls(Path(root or os.environ.get("LORAFORGE_HOME", ".loraforge")).resolve())

    @property
    def db(self) -> Path:
        return self.root / "loraforge.duckdb"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def adapters(self) -> Path:
        return self.root / "adapters"

    @property
    def models(self) -> Path:
        """Built students; ``LORAFORGE_MODELS_DIR`` shares one directory between homes (a student is built once)."""
        shared = os.environ.get("LORAFORGE_MODELS_DIR")
        return Path(shared).resolve() if shared else self.root / "models"


class Counts(BaseModel):
    requested: int = 0
    accepted: int = 0
    quarantined: int = 0
    failed: int = 0


class AdapterRef(BaseModel):
    id: str | None = None
    status: AdapterStatus | None = None


class RunSummary(BaseModel):
    """The ``run`` object of the CLI contract (``loraforge run --json``)."""

    run_id: str
    domain: str
    profile: str
    status: RunStatus
    counts: Counts = Counts()
    quarantine_reasons: dict[str, int] = Field(default_factory=dict)
    quality: dict | None = None  # validation's data-quality report: acceptance rate, reasons, topics, lengths
    dataset_id: str | None = None
    # accepted examples of the run (train + val + test splits) and the train rows the adapter actually saw
    examples: dict[str, int | None] = Field(default_factory=lambda: {"distilled": None, "trained_on": None})
    adapter: AdapterRef = AdapterRef()
    eval: dict = Field(default_factory=lambda: {"base": None, "candidate": None, "champion": None})
    gate: dict | None = None
    seconds: dict[str, float] = Field(default_factory=dict)
    error: str | None = None
