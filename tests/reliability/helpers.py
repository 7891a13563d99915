"""Shared pieces of the reliability suite: a CLI runner, temp config trees, a counting mock teacher, leak search."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from aiohttp import web

from schemas.config import project_root
from tasks.teacher.mock_server import MockTeacherServer, request_key

REPO = project_root()


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    """An environment whose every writable place is under ``tmp`` (home, Prefect home, configs)."""
    env = {**os.environ, "LORAFORGE_HOME": str(tmp / "home"), "PREFECT_HOME": str(tmp / "prefect"),
           "PYTHONPATH": str(REPO), "PREFECT_LOGGING_LEVEL": "INFO"}
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd or REPO, timeout=timeout)


def kill_cli_after(args: list[str], env: dict[str, str], server, n_requests: int, log_path: Path) -> None:
    """Start ``loraforge ARGS`` in its own process group and kill -9 the group once ``server`` has received
    ``n_requests``. Output goes to ``log_path``, not a pipe nobody reads while we wait (a full pipe would stall
    the run before the kill); a run that ends before the kill fails the test with its log."""
    with log_path.open("wb") as log_f:
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], cwd=REPO, env=env, stdout=log_f,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 600
    while server.requests_received < n_requests and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before the kill: " + log_path.read_text()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def configs_copy(dest: Path) -> Path:
    """A private copy of ``configs/`` (domains, students, golden sets) to point ``LORAFORGE_CONFIGS`` at."""
    shutil.copytree(REPO / "configs", dest)
    return dest


def write_domain(configs: Path, name: str, *, base: str = "regex-python", set_keys: dict | None = None,
                 tiny: dict | None = None, text: str | None = None) -> Path:
    """Write ``configs/domains/<name>.yaml``: raw ``text`` as given, or ``base``'s YAML with dotted keys set
    (``tiny``: dotted overrides added to the ``tiny`` profile, which is applied over the base keys)."""
    path = configs / "domains" / f"{name}.yaml"
    if text is not None:
        path.write_text(text)
        return path
    data = yaml.safe_load((configs / "domains" / f"{base}.yaml").read_text())
    data["name"] = name
    for dotted, value in (set_keys or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    data.setdefault("profiles", {}).setdefault("tiny", {}).update(tiny or {})
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class HostileMockTeacher(MockTeacherServer):
    """The loopback mock teacher (with its per-request ``received`` / ``delivered`` counters), plus errors that
    quote the caller's ``Authorization`` header back, as some proxies do: a wrong key gets a 401 naming it, and
    every ``echo_every``-th distinct request first gets a 500 or 400 quoting it (then a normal answer)."""

    def __init__(self, *, echo_every: int = 7, **kwargs) -> None:
        super().__init__(**kwargs)
        self.echo_every = echo_every
        self.echoed = 0  # error bodies that quoted the caller's Authorization header
        self._echoed_keys: set[str] = set()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            key = request_key((await request.json())["messages"])
        except Exception:  # noqa: BLE001 - let the base class answer the malformed request
            return await super()._chat(request)
        auth = request.headers.get("Authorization", "")
        wrong_key = not self._authorised(request)
        if wrong_key or (key not in self._echoed_keys and int(key, 16) % self.echo_every == 0):
            self.requests_received += 1
            self.received[key] += 1
            self.echoed += 1
            if wrong_key:
                return self._error(401, f"Incorrect API key provided: {auth}", "authentication_error")
            self._echoed_keys.add(key)
            status = 500 if self.echoed % 2 else 400
            return self._error(status, f"upstream rejected the request; headers: Authorization={auth}",
                               "server_error" if status == 500 else "invalid_request_error")
        return await super()._chat(request)


def files_containing(roots: list[Path], needle: bytes) -> list[str]:
    """Every file under ``roots`` whose bytes contain ``needle`` (symlinks not followed)."""
    hits = []
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                p = Path(dirpath) / name
                if p.is_symlink() or not p.is_file():
                    continue
                if needle in p.read_bytes():
                    hits.append(str(p))
    return hits


def tree_state(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[int, int]]:
    """Path → (size, mtime_ns) of every file and directory under ``root``, minus the ``skip`` subtrees."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if str(Path(dirpath) / d) not in skip]
        for name in dirs + files:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p)] = (st.st_size if p.is_file() else 0, st.st_mtime_ns if p.is_file() else 0)
    return out
