"""Shared fixtures: an isolated LORAFORGE_HOME per test and one Prefect test harness per session."""

from __future__ import annotations

import os
import tempfile

import pytest

# Before anything imports prefect: no real server, no home directory, no telemetry.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="prefect-home-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One models directory for the whole session, inherited by the CLI subprocesses: each student is built once, not
# once per test home (Home.models; tests of the build itself pass their own directory to resolve_base_model).
os.environ.setdefault("LORAFORGE_MODELS_DIR", tempfile.mkdtemp(prefix="loraforge-models-"))


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh $LORAFORGE_HOME for the test."""
    from schemas.run import Home

    root = tmp_path / "lfhome"
    monkeypatch.setenv("LORAFORGE_HOME", str(root))
    return Home.from_env(root)


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test harness (temporary database, loopback API) for every flow test of the session, and for the
    CLI subprocesses those tests start."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        # CLI subprocesses started while the harness runs (tests copy os.environ) use this server too, instead of
        # each starting an ephemeral one (~15 s apiece); a test that needs its own server drops the variable.
        os.environ["PREFECT_API_URL"] = PREFECT_API_URL.value()
        try:
            yield
        finally:
            os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture(scope="session")
def student_dir() -> str:
    """The tiny student, built once per session the way the pipeline builds it (in the shared models directory)."""
    from tasks.student import resolve_base_model

    return resolve_base_model("tiny-llama", os.environ["LORAFORGE_MODELS_DIR"])


@pytest.fixture
def domain_cfg():
    from schemas.config import load_domain

    return load_domain("regex-python", "tiny")
