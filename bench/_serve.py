"""What the serving benches share: tiny adapters trained and promoted in a LORAFORGE_HOME, a `loraforge serve`
subprocess on a free loopback port, a closed-loop async client, and the commit/machine stamp."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLI = [sys.executable, "-m", "flows.cli"]
REQUESTS = ["a US zip code with an optional four digit suffix", "an IPv4 address", "a date like 2024-01-31",
            "a hex color such as #a1b2c3", "a lowercase identifier with underscores", "a time like 23:59"]


def env_for(home: Path) -> dict:
    env = os.environ | {"LORAFORGE_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                        "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    env.pop("LORAFORGE_API_KEY", None)
    return env


def ensure_adapters(home: Path, needs: dict[str, int]) -> dict[str, list[dict]]:
    """At least ``needs[domain]`` trained adapters per domain in ``home`` (trained with `loraforge run --profile
    tiny` where missing; the tiny gate rejects them, which does not matter here), oldest first."""
    from schemas.run import Home
    from tasks import store

    h = Home.from_env(home)
    for domain, n in needs.items():
        have = store.list_adapters(h.db, domain) if h.db.exists() else []
        for _ in range(n - len(have)):
            t0 = time.perf_counter()
            r = subprocess.run([*CLI, "run", "--domain", domain, "--profile", "tiny", "--json"], cwd=ROOT,
                               env=env_for(home), capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"training {domain} failed:\n{r.stderr[-3000:]}")
            print(f"trained a tiny {domain} adapter in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return {d: store.list_adapters(h.db, d)[:n] for d, n in needs.items()}


def promote(home: Path, row: dict) -> None:
    """`loraforge promote --force` without its Prefect flow run: the registry change and the pointer move."""
    from schemas.run import Home
    from tasks import registry

    h = Home.from_env(home)
    registry.apply_decision(h.db, h.adapters, run_id=None, domain=row["domain"], adapter=row,
                            decision=registry.forced_decision("bench"), reason="bench")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, domains: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    args = [*CLI, "serve", "--port", str(port)] + [a for d in domains for a in ("--domain", d)]
    out = open(log, "wb")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(args, cwd=ROOT, env=env_for(home), stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the server did not come up in 600 s")


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def closed_loop(url: str, models: list[str], concurrency: int, seconds: float, max_tokens: int = 16,
                      stop: asyncio.Event | None = None) -> list[dict]:
    """``concurrency`` clients, each sending its next request when the last is answered, cycling ``models``."""
    import httpx

    out: list[dict] = []
    end = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def worker(k: int) -> None:
            i = k
            while time.monotonic() < end and not (stop and stop.is_set()):
                model = models[i % len(models)]
                body = {"model": model, "max_tokens": max_tokens,
                        "messages": [{"role": "user", "content": REQUESTS[i % len(REQUESTS)]}]}
                t0 = time.monotonic()
                try:
                    r = await client.post("/v1/chat/completions", json=body)
                    fp = r.json().get("system_fingerprint") if r.status_code == 200 else None
                    out.append({"model": model, "t0": t0, "t1": time.monotonic(), "status": r.status_code,
                                "fingerprint": fp})
                except httpx.HTTPError as e:
                    out.append({"model": model, "t0": t0, "t1": time.monotonic(), "status": -1, "error": repr(e)})
                i += concurrency

        await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return out


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))], 1)


def histogram(metrics_text: str, name: str) -> dict:
    """A Prometheus histogram from /metrics text: count, mean and p50/p95 interpolated within the buckets (the
    values a bucket holds are taken as spread evenly over it); times in ms for a ``*_seconds`` histogram."""
    scale = 1000 if name.endswith("_seconds") else 1
    unit = "_ms" if scale == 1000 else ""
    cum = sorted((float(le), float(v)) for le, v in
                 re.findall(rf'^{name}_bucket\{{le="([^"]+)"\}} (\S+)$', metrics_text, re.M) if le != "+Inf")
    count = float((re.search(rf"^{name}_count (\S+)$", metrics_text, re.M) or [0, 0])[1])
    total = float((re.search(rf"^{name}_sum (\S+)$", metrics_text, re.M) or [0, 0])[1])

    def quantile(q: float) -> float | None:
        lo_edge, lo_n = 0.0, 0.0
        for edge, n in cum:
            if n >= q * count and n > lo_n:
                return round((lo_edge + (edge - lo_edge) * (q * count - lo_n) / (n - lo_n)) * scale, 1)
            lo_edge, lo_n = edge, n
        return None  # beyond the last finite bucket

    if not count:
        return {"count": 0, f"mean{unit}": None, f"p50{unit}": None, f"p95{unit}": None}
    return {"count": int(count), f"mean{unit}": round(total / count * scale, 2 if not unit else 1),
            f"p50{unit}": quantile(0.5), f"p95{unit}": quantile(0.95)}


def dumps(obj) -> str:
    return json.dumps(obj)
