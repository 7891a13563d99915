"""The team set-up, end to end, as the README's "Run it as a team" section describes it.

A real Prefect server on a free loopback port (its own PREFECT_HOME), the work pools `local-process` and
`gpu`, `prefect deploy --all` from this repo's prefect.yaml, one process worker per pool, and a deployment
run started from the CLI the way a person would (`prefect deployment run … -p key=value --watch`) with the
`tiny` profile and `training.train_on: deployment`, so training runs as its own flow run on the `gpu` pool.
Then headless Chromium opens the finished run and its artifacts in the Prefect UI that server serves.

Every process the module starts is stopped (its whole process group) on teardown, pass or fail.
Set LORAFORGE_UI_SCREENSHOTS=docs to refresh the README's screenshots from this test.
"""

from __future__ import annotations

import contextlib
import html.parser
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DOMAIN = "regex-python"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Long-running subprocesses, each in its own process group so that stopping one stops its children."""

    def __init__(self, logs: Path):
        self.logs, self.procs = logs, {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = (proc, log)
        return proc

    def tail(self, name: str, n: int = 3000) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-n:]

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):  # workers (and their flow runs) before the server
            proc, log = self.procs.pop(name)
            flow_runs = descendants(proc.pid)  # a process worker starts each flow run in a session of its own
            for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
                if proc.poll() is not None:
                    break
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(wait)
                except subprocess.TimeoutExpired:
                    continue
            for pid in flow_runs:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            log.close()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), whatever session or process group it is in."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the `prefect` CLI as a person would, from the repo root, without prompts."""
    return subprocess.run([str(BIN / "prefect"), "--no-prompt", *args], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """A Prefect server with both work pools, every deployment of prefect.yaml and a worker per pool."""
    from prefect.client.orchestration import SyncPrefectClient

    root = tmp_path_factory.mktemp("team")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(root / "prefect-home"), "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_CLI_PROMPT": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "2", "PYTHONUNBUFFERED": "1",
        "LORAFORGE_REPO": str(REPO), "LORAFORGE_HOME": str(root / "lfhome"),
        "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
    })
    procs = Processes(root)
    try:
        server = procs.start("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                        "--port", str(port)], env)
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, f"prefect server exited:\n{procs.tail('server')}"
            assert time.monotonic() < deadline, f"prefect server not healthy in 180 s:\n{procs.tail('server')}"
            time.sleep(0.5)

        for pool in ("local-process", "gpu"):
            r = cli(env, "work-pool", "create", pool, "--type", "process")
            assert r.returncode == 0, r.stdout + r.stderr
        r = cli(env, "deploy", "--all")
        assert r.returncode == 0, r.stdout + r.stderr
        for pool in ("local-process", "gpu"):
            procs.start(f"worker-{pool}", [str(BIN / "prefect"), "worker", "start", "--pool", pool], env)
        with SyncPrefectClient(api) as client:
            yield {"env": env, "api": api, "ui": f"http://127.0.0.1:{port}", "client": client, "procs": procs,
                   "home": Path(env["LORAFORGE_HOME"])}
    finally:
        procs.stop_all()


@pytest.fixture(scope="module")
def finished_run(team):
    """The `quick` deployment run from the CLI with the tiny profile and training on the gpu pool."""
    r = cli(team["env"], "deployment", "run", "distill-to-adapter/quick", "-p", f"domain={DOMAIN}",
            "-p", "profile=tiny", "-p", 'overrides={"training.train_on": "deployment"}',
            "--watch", "--watch-timeout", "600", timeout=660)
    m = re.search(r"UUID: ([0-9a-f-]{36})", r.stdout)
    assert m, f"no flow run created:\n{r.stdout}\n{r.stderr}"
    flow_run = team["client"].read_flow_run(m.group(1))
    logs = "\n".join(team["procs"].tail(n, 4000) for n in ("worker-local-process", "worker-gpu"))
    assert flow_run.state.is_completed(), f"{flow_run.state!r}\n{r.stdout[-3000:]}\n{logs}"
    return flow_run


def test_deploy_all_registers_a_deployment_per_domain_and_training_on_the_gpu_pool(team):
    from schemas.config import available_domains

    client = team["client"]
    deployments = {f"{client.read_flow(d.flow_id).name}/{d.name}": d for d in client.read_deployments()}
    for domain in available_domains():
        d = deployments[f"distill-to-adapter/{domain}"]
        assert d.parameters["domain"] == domain and d.work_pool_name == "local-process"
        assert d.schedules and not any(s.active for s in d.schedules), "schedules ship inactive"
    assert deployments["train-adapter/train-adapter"].work_pool_name == "gpu"
    assert {"evaluate-adapter/evaluate-adapter", "promote-adapter/promote", "rollback-adapter/rollback"} <= set(
        deployments)
    schema = deployments[f"distill-to-adapter/{DOMAIN}"].parameter_openapi_schema
    assert DOMAIN in schema["properties"]["domain"]["enum"], "the UI form offers the domains as choices"
    assert "tiny" in str(schema["properties"]["profile"]), "and the profiles"


def test_cli_triggered_run_completes_with_training_as_its_own_flow_run_on_the_gpu_pool(team, finished_run):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    client = team["client"]
    train = client.read_deployment_by_name("train-adapter/train-adapter")
    runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[train.id])))
    assert len(runs) == 1, [r.name for r in runs]
    child = runs[0]
    assert child.state.is_completed() and child.work_pool_name == "gpu"
    assert child.parent_task_run_id, "run_deployment links the training run to the pipeline run"
    assert client.read_task_run(child.parent_task_run_id).flow_run_id == finished_run.id


def test_duckdb_holds_the_results_of_the_deployment_run(team, finished_run):
    from tasks import store

    db = team["home"] / "loraforge.duckdb"
    runs = store.list_runs(db, DOMAIN)
    assert [r["status"] for r in runs] == ["completed"]
    run_id = runs[0]["run_id"]
    counts = store.run_counts(db, run_id)["counts"]
    assert counts["requested"] == counts["accepted"] + counts["quarantined"] + counts["failed"] > 0
    assert store.run_examples(db, run_id).num_rows == counts["accepted"] > 0
    adapters = [a for a in store.list_adapters(db, DOMAIN) if a["run_id"] == run_id]
    assert len(adapters) == 1 and adapters[0]["status"] in {"promoted", "rejected"}
    assert Path(adapters[0]["path"], "metrics.json").is_file(), "the gpu worker wrote the metrics manifest"


def test_gate_decision_reaches_the_server_as_an_event_automations_can_react_to(team, finished_run):
    from tasks import store

    run_id = store.list_runs(team["home"] / "loraforge.duckdb", DOMAIN)[0]["run_id"]
    query = {"filter": {"event": {"prefix": ["loraforge.adapter."]}}, "limit": 10}
    deadline = time.monotonic() + 60  # the server persists events in batches
    while not (events := httpx.post(f"{team['api']}/events/filter", json=query, timeout=10).json()["events"]):
        assert time.monotonic() < deadline, "no loraforge.adapter.* event on the server"
        time.sleep(1)
    [event] = events
    assert event["event"] in {"loraforge.adapter.promoted", "loraforge.adapter.rejected"}
    assert event["resource"]["loraforge.domain"] == DOMAIN and event["payload"]["run_id"] == run_id


# ------------------------------------------------------------------------------------------- the Prefect UI


def chromium_path() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


class _Text(html.parser.HTMLParser):
    """The text a person sees: everything outside <script>, <style> and <noscript>."""

    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], 0

    HIDDEN = ("script", "style", "noscript")

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in self.HIDDEN and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def missing(expect: list[str | re.Pattern], text: str, dom: str) -> list[str]:
    """Expected strings not in the page's visible text and expected patterns not in its DOM."""
    return [e if isinstance(e, str) else e.pattern for e in expect
            if (e not in text if isinstance(e, str) else not e.search(dom))]


def render(url: str, png: Path, expect: list[str | re.Pattern], tmp: Path) -> tuple[str, str]:
    """Load ``url`` in headless Chromium; save a screenshot; return the rendered DOM's visible text and the DOM.

    The page is given virtual time to run its API calls (virtual time stands still while requests are
    pending); a page that has not shown everything ``expect``ed yet is loaded again with more time."""
    text = dom = ""
    for budget in (15_000, 30_000, 60_000):
        profile = tmp / f"chromium-{budget}-{png.stem}"
        out = subprocess.run(
            [chromium_path(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}", "--window-size=1400,1000",
             f"--virtual-time-budget={budget}", f"--screenshot={png}", "--dump-dom", url],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
        parser, dom = _Text(), out.stdout
        parser.feed(dom)
        text = " ".join(" ".join(parser.parts).split())
        if not missing(expect, text, dom):
            break
    return text, dom


def test_prefect_ui_shows_the_run_its_quality_report_loss_curve_and_gate_decision(team, finished_run, tmp_path):
    if chromium_path() is None:
        msg = "no chromium: run `bash scripts/ensure_chromium.sh` (as root it installs Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    client, ui = team["client"], team["ui"]
    train = client.read_deployment_by_name("train-adapter/train-adapter")
    pipeline = client.read_deployment_by_name(f"distill-to-adapter/{DOMAIN}")
    train_run = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[train.id])))[0]
    pages = {  # the default (V2) UI, as a newcomer opening the server's address sees it
        "ui-flow-run": (f"{ui}/v2/runs/flow-run/{finished_run.id}?tab=SubflowRuns",
                        ["Completed", finished_run.name, "Work Pool local-process", "generate-examples",
                         "train-adapter", "evaluate-adapter", "gate-and-promote"]),
        "ui-training-run": (f"{ui}/v2/runs/flow-run/{train_run.id}?tab=Artifacts",
                            ["Completed", "train-adapter", "Work Pool gpu", "Parent Run", finished_run.name]),
        "ui-run-form": (f"{ui}/v2/deployments/deployment/{pipeline.id}/run",  # "Run" → "Custom run"
                        ["Parameters", "domain", "The domain to distill", "profile", "overrides"]),
    }
    artifacts = client.read_artifacts()  # this server has seen one pipeline run
    for key, shot, expect in [("data-quality", "ui-quality-report", ["Data quality", "accepted", "reason", "topic"]),
                              ("training", "ui-loss-curve", ["Training", "train loss", "val loss",
                                                             re.compile(r'<img[^>]*alt="[^"]*loss[^"]*"')]),
                              ("gate-decision", "ui-gate-decision", ["Gate:", "check", "threshold"])]:
        found = [a for a in artifacts if a.key == key or (a.key or "").startswith(f"{key}-")]  # e.g. gate-decision-D
        assert found, f"no {key!r} artifact on the server; there are {[a.key for a in artifacts]}"
        pages[shot] = (f"{ui}/v2/artifacts/artifact/{found[-1].id}", [found[-1].key, *expect])

    failures = []
    for shot, (url, expect) in pages.items():
        text, dom = render(url, tmp_path / f"{shot}.png", expect, tmp_path)
        if absent := missing(expect, text, dom):
            failures.append(f"{url}: missing {absent}; page text: {text[:600]!r}")
        assert (tmp_path / f"{shot}.png").stat().st_size > 10_000, f"{shot}: empty screenshot"
    assert not failures, "\n".join(failures)
    if target := os.environ.get("LORAFORGE_UI_SCREENSHOTS"):
        for shot in pages:
            shutil.copy(tmp_path / f"{shot}.png", REPO / target / f"{shot}.png")


# ------------------------------------------------------------------------------------ the failure loop (issue 18)
def loraforge(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the `loraforge` CLI against the team server's state, as a person would."""
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def test_improve_deployment_runs_the_failure_loop_end_to_end_with_the_tiny_profile(team, finished_run):
    """`improve-<domain>` from the CLI with the tiny profile: evaluate-champion → failure report → focused distill →
    train → gate, on the server's workers; `loraforge failures --json` prints the contract's fields. Runs last: the
    tests above count this server's runs, events and artifacts."""
    import json

    from tasks import store

    env, db = team["env"], team["home"] / "loraforge.duckdb"
    [champ] = store.list_adapters(db, DOMAIN)
    if champ["status"] != "promoted":  # a tiny run rarely clears the gate: the loop needs a champion
        r = loraforge(env, "promote", "--domain", DOMAIN, "--adapter", champ["adapter_id"], "--force", "--reason",
                      "a champion for the improve test", "--json")
        assert r.returncode == 0, r.stdout + r.stderr
    r = loraforge(env, "failures", "--domain", DOMAIN, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.splitlines()[-1])
    assert {"domain", "adapter_id", "slices", "items"} <= set(report) and report["adapter_id"] == champ["adapter_id"]
    assert all(set(s) == {"slice", "n", "failed", "rate"} for s in report["slices"])

    r = cli(env, "deployment", "run", f"improve-domain/improve-{DOMAIN}", "-p", "profile=tiny",
            "--watch", "--watch-timeout", "600", timeout=660)
    m = re.search(r"UUID: ([0-9a-f-]{36})", r.stdout)
    assert m, f"no flow run created:\n{r.stdout}\n{r.stderr}"
    flow_run = team["client"].read_flow_run(m.group(1))
    assert flow_run.state.is_completed(), f"{flow_run.state!r}\n{r.stdout[-3000:]}\n" + team["procs"].tail(
        "worker-local-process", 4000)
    focused = store.list_runs(db, DOMAIN)[-1]
    assert focused["status"] == "completed"
    plan = store.focus_plan(db, focused["run_id"])
    assert plan and plan["adapter_id"] == champ["adapter_id"]
    decision = store.run_decision(db, focused["run_id"])
    assert decision and decision["adapter_id"] == focused["adapter_id"]
    assert [a.key for a in team["client"].read_artifacts() if (a.key or "") == f"failures-{DOMAIN}"]
