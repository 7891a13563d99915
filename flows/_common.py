"""Small helpers every flow shares: the run's stored config and progress bars."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from schemas.config import DomainConfig
from schemas.run import Home
from tasks import store


def run_config(home: Home, run_id: str) -> DomainConfig:
    """The resolved config a run was started with (stages and reruns never re-read the YAML)."""
    row = store.get_run(home.db, run_id)
    if row is None:
        raise ValueError(f"unknown run {run_id!r}; see `loraforge runs ls`")
    return DomainConfig.model_validate(json.loads(row["config_json"]))


@contextmanager
def progress_bar(description: str, total: int):
    """A rich progress bar on stderr (silent when stderr is not a terminal); yields ``advance(n)``."""
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, disable=not sys.stderr.isatty(), transient=False) as p:
        task = p.add_task(description, total=total)
        yield lambda n=1: p.advance(task, n)
