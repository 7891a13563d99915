"""Serving without models (fast): the non-loopback bind refusal, the HTTP layer's limits (full queue, timeout, API
key), the vLLM export line and the runtime registration calls that promotion and rollback make, verified against a
loopback stand-in speaking vLLM's LoRA API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI, Request  # module level: the stand-in's handler annotations are resolved here
from fastapi.responses import JSONResponse

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "flows.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_adapter(home, domain: str, adapter_id: str, base: Path, *, modules_to_save=None, r: int = 16) -> dict:
    """An adapter directory as the trainer leaves it (configs only: nothing here loads weights), recorded in DuckDB."""
    from tasks import store

    path = home.adapters / domain / adapter_id
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"r": r, "base_model_name_or_path": str(base),
                                                          "modules_to_save": modules_to_save, "peft_type": "LORA"}))
    (path / "metrics.json").write_text(json.dumps({"base_model": str(base), "quantized_4bit": False}))
    store.init_db(home.db)
    row = {"adapter_id": adapter_id, "domain": domain, "run_id": None, "dataset_id": None, "base_model": str(base),
           "path": str(path), "status": "candidate"}
    store.record_adapter(home.db, row)
    return row


@pytest.fixture
def base_dir(tmp_path) -> Path:
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text('{"model_type": "llama"}')
    return base


class StandIn:
    """A loopback stand-in for vLLM's runtime LoRA API: records every call, refuses a wrong API key."""

    def __init__(self, key: str | None):
        import uvicorn

        self.calls: list[tuple[str, dict, str | None]] = []
        app = FastAPI()

        @app.post("/v1/{op}")
        async def op(op: str, request: Request):
            auth = request.headers.get("authorization")
            self.calls.append((op, await request.json(), auth))
            if key and auth != f"Bearer {key}":
                return JSONResponse({"error": "unauthorized"}, 401)
            return JSONResponse("Success")

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


def test_non_loopback_bind_without_a_key_is_refused_before_binding(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "LORAFORGE_API_KEY"} | {"LORAFORGE_HOME": str(tmp_path)}
    r = subprocess.run([*CLI, "serve", "--host", "0.0.0.0", "--port", str(port), "--domain", "regex-python"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "LORAFORGE_API_KEY" in r.stderr and "--insecure" in r.stderr
    with socket.socket() as s:  # nothing listens there
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_api_key_rules():
    from tasks.serve.server import ServeError, api_key_for, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    os.environ.pop("LORAFORGE_API_KEY", None)
    assert api_key_for("127.0.0.1", False) is None
    assert api_key_for("0.0.0.0", True) is None
    with pytest.raises(ServeError, match="LORAFORGE_API_KEY"):
        api_key_for("0.0.0.0", False)
    os.environ["LORAFORGE_API_KEY"] = "k1"
    try:
        assert api_key_for("0.0.0.0", False) == "k1"
    finally:
        os.environ.pop("LORAFORGE_API_KEY")


def test_vllm_export_line_and_the_refusal_of_modules_to_save(home, base_dir):
    from tasks import registry

    a = fake_adapter(home, "regex-python", "ad-plain1", base_dir, r=12)
    b = fake_adapter(home, "regex-re2", "ad-tiny1", base_dir, modules_to_save=["embed_tokens", "lm_head"])
    for ad in (a, b):
        registry.apply_decision(home.db, home.adapters, run_id=None, domain=ad["domain"], adapter=ad,
                                decision=registry.forced_decision("test"), reason="test")
    env = os.environ | {"LORAFORGE_HOME": str(home.root)}
    r = subprocess.run([*CLI, "export", "--domain", "regex-python", "--format", "vllm"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip().splitlines()[-1]
    assert f"vllm serve {base_dir.resolve()} --enable-lora" in line
    assert f"--lora-modules regex-python@ad-plain1={Path(a['path']).resolve()}" in line
    assert "--max-lora-rank 16" in line  # r=12 rounded up to a rank vLLM accepts
    r = subprocess.run([*CLI, "export", "--domain", "regex-re2", "--format", "vllm"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "modules_to_save" in r.stderr and "ad-tiny1" in r.stderr


def test_promotion_and_rollback_register_with_vllm_under_immutable_names(home, base_dir, monkeypatch):
    from tasks import registry

    standin = StandIn(key="vk")
    try:
        monkeypatch.setenv("LORAFORGE_VLLM_URL", f"http://127.0.0.1:{standin.port}")
        monkeypatch.setenv("VLLM_API_KEY", "vk")
        first = fake_adapter(home, "regex-python", "ad-v1", base_dir)
        second = fake_adapter(home, "regex-python", "ad-v2", base_dir)
        for ad in (first, second):
            registry.apply_decision(home.db, home.adapters, run_id=None, domain="regex-python", adapter=ad,
                                    decision=registry.forced_decision("test"), reason="test")
        registry.rollback(home.db, home.adapters, "regex-python")
        calls = [(op, body) for op, body, _ in standin.calls]
        p1, p2 = (str(Path(a["path"]).resolve()) for a in (first, second))
        assert calls == [
            ("load_lora_adapter", {"lora_name": "regex-python@ad-v1", "lora_path": p1}),
            ("load_lora_adapter", {"lora_name": "regex-python@ad-v2", "lora_path": p2}),
            ("unload_lora_adapter", {"lora_name": "regex-python@ad-v1"}),
            ("load_lora_adapter", {"lora_name": "regex-python@ad-v1", "lora_path": p1}),
            ("unload_lora_adapter", {"lora_name": "regex-python@ad-v2"}),
        ]
        assert {auth for _, _, auth in standin.calls} == {"Bearer vk"}
        # a vLLM that refuses never undoes the registry change: the pointer moved, the error is reported
        monkeypatch.setenv("VLLM_API_KEY", "wrong")
        third = fake_adapter(home, "regex-python", "ad-v3", base_dir)
        registry.apply_decision(home.db, home.adapters, run_id=None, domain="regex-python", adapter=third,
                                decision=registry.forced_decision("test"), reason="test")
        assert registry.read_pointer(home.adapters, "regex-python") == third["path"]
        from tasks.serve.vllm import sync_promotion

        r = sync_promotion("regex-python", third["path"], "ad-v1")
        assert r["loaded"] is None and "401" in r["error"]
    finally:
        standin.stop()


def test_no_vllm_configured_means_no_calls(home, base_dir):
    from tasks.serve.vllm import sync_promotion

    os.environ.pop("LORAFORGE_VLLM_URL", None)
    a = fake_adapter(home, "regex-python", "ad-x", base_dir)
    assert sync_promotion("regex-python", a["path"], None) is None


def test_full_queue_timeout_and_api_key_in_the_openai_shape():
    """The HTTP layer over a batcher that never answers (no model needed): 429 + Retry-After when the queue is full,
    504 when a request outlives serve.request_timeout_s, 401 without the API key, 503 + Retry-After once stopped."""
    import asyncio
    import threading

    import httpx

    from schemas.config import ServeConfig, load_domain
    from tasks.serve.app import create_app
    from tasks.serve.batcher import Batcher, Metrics
    from tasks.serve.engine import Engine
    from tasks.serve.routes import Routes

    class Stuck(Batcher):
        release = threading.Event()

        def run(self):
            self.release.wait(30)

    routes = Routes(Engine(cpu_threads=None), Path("/nonexistent"), [load_domain("regex-python")], base_models={})
    metrics = Metrics()
    batcher = Stuck(Engine(cpu_threads=None), routes, metrics, window_ms=0, max_batch=1, queue_limit=1)
    batcher.start()
    app = create_app(routes, batcher, metrics, serve_cfg=ServeConfig(request_timeout_s=1.0), api_key="k1")
    body = {"model": "regex-python", "prompt": "an IPv4 address", "max_tokens": 4}
    auth = {"Authorization": "Bearer k1"}

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            no_key = await c.post("/v1/completions", json=body)
            first = asyncio.create_task(c.post("/v1/completions", json=body, headers=auth))
            await asyncio.sleep(0.2)  # the first request waits in the queue (limit 1)
            second = await c.post("/v1/completions", json=body, headers=auth)
            return no_key, await first, second

    no_key, first, second = asyncio.run(scenario())
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "invalid_api_key"
    assert second.status_code == 429 and second.headers["retry-after"] == "1"
    assert second.json()["error"]["code"] == "queue_full"
    assert first.status_code == 504 and first.json()["error"]["code"] == "timeout"
    Stuck.release.set()
    batcher.join(5)

    async def after_stop():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.post("/v1/completions", json=body, headers=auth), await c.get("/healthz")

    stopped, health = asyncio.run(after_stop())
    assert stopped.status_code == 503 and "retry-after" in stopped.headers and health.status_code == 503
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    for code in ("queue_full", "timeout", "invalid_api_key"):
        assert f'loraforge_errors_total{{code="{code}"}} 1.0' in text, code
