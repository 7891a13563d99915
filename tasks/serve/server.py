"""Putting the server together: ``serve`` (the ``loraforge serve`` command) and ``ask`` (``loraforge ask``).

    loraforge serve [--host 127.0.0.1] [--port 8000] [--domain D ...] [--insecure]
    loraforge ask --domain regex-python "an IPv4 address" [--url http://127.0.0.1:8000] [--json]

Safe defaults: loopback bind; any other address needs ``LORAFORGE_API_KEY`` in the environment (clients send
``Authorization: Bearer KEY``) unless ``--insecure`` is given, and that is checked before any model is loaded or
any port is bound. SIGTERM: uvicorn stops accepting, lets requests in flight finish, and the process exits.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from dataclasses import dataclass

from schemas.config import DomainConfig, load_domain
from schemas.run import Home
from tasks.serve.batcher import Batcher, Metrics
from tasks.serve.engine import Engine
from tasks.serve.routes import Routes, Watcher

API_KEY_ENV = "LORAFORGE_API_KEY"
POLL_S = 0.02  # pointer poll interval (one readlink per domain)
log = logging.getLogger("loraforge.serve")


class ServeError(ValueError):
    """The server cannot start as asked (bind without a key, no domain to serve…)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key_for(host: str, insecure: bool) -> str | None:
    """The API key clients must send; refuses a non-loopback bind without one unless ``insecure``."""
    key = os.environ.get(API_KEY_ENV) or None
    if not is_loopback(host) and key is None and not insecure:
        raise ServeError(f"refusing to bind {host}: a non-loopback address needs an API key in ${API_KEY_ENV} "
                         "(clients send `Authorization: Bearer KEY`), or pass --insecure to serve without one")
    return key


def domain_configs(domains: list[str] | None, home: Home) -> list[DomainConfig]:
    """The domains to serve: those named, else every domain with a promoted adapter, else every domain file."""
    from schemas.config import available_domains

    if domains:
        return [load_domain(d, "full") for d in domains]
    names = available_domains()
    promoted = [d for d in names if (home.adapters / d / "promoted").is_symlink()]
    return [load_domain(d, "full") for d in promoted or names]


def base_dirs(cfgs: list[DomainConfig], home: Home) -> dict[str, str]:
    """Each domain's configured base model directory (built on first use, as the pipeline builds it)."""
    from tasks.student import resolve_base_model

    return {c.name: resolve_base_model(c.training.base_model, home.models) for c in cfgs}


@dataclass
class Server:
    engine: Engine
    routes: Routes
    batcher: Batcher
    watcher: Watcher
    metrics: Metrics

    def stop(self) -> None:
        self.watcher.stop.set()
        self.batcher.stop()


def build(cfgs: list[DomainConfig], home: Home) -> Server:
    """Load every base once, attach every champion, start the batcher and the registry watcher."""
    if not cfgs:
        raise ServeError("no domain to serve: name one with --domain (configs/domains/*.yaml)")
    s = cfgs[0].serve
    engine, metrics = Engine(s.cpu_threads), Metrics()
    routes = Routes(engine, home.adapters, cfgs, base_models=base_dirs(cfgs, home))

    def on_swap(domain: str, old: str | None, new: str, seconds: float) -> None:
        if old:
            metrics.swaps.labels(domain).inc()
        metrics.swap_seconds.observe(seconds)

    routes.on_swap = on_swap
    routes.load_initial()
    batcher = Batcher(engine, routes, metrics, window_ms=s.batch_window_ms, max_batch=s.max_batch,
                      queue_limit=s.queue_limit)
    batcher.start()
    watcher = Watcher(routes, batcher.control, POLL_S)
    watcher.start()
    return Server(engine, routes, batcher, watcher, metrics)


def serve(domains: list[str] | None, host: str | None, port: int | None, insecure: bool) -> None:
    import uvicorn

    from tasks.serve.app import create_app

    home = Home.from_env()
    cfgs = domain_configs(domains, home)
    if not cfgs:
        raise ServeError("no domain to serve: name one with --domain (configs/domains/*.yaml)")
    s = cfgs[0].serve
    host, port = host or s.host, port or s.port
    key = api_key_for(host, insecure)  # before any model is loaded or port bound
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = build(cfgs, home)
    app = create_app(server.routes, server.batcher, server.metrics, serve_cfg=s, api_key=key)
    for name, d in server.routes.domains.items():
        what = d.champion.adapter_id if d.champion else f"nothing yet ({d.refused or 'no champion'})"
        log.info("serving %s → %s", name, what)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=s.request_timeout_s)
    finally:
        server.stop()


def ask_local(domain: str, request: str, max_tokens: int | None = None) -> dict:
    """One answer from the domain's promoted adapter, in this process (no server)."""
    home = Home.from_env()
    cfg = load_domain(domain, "full")
    engine = Engine(cfg.serve.cpu_threads)
    routes = Routes(engine, home.adapters, [cfg], base_models={})
    target = routes.read_pointer(domain)
    if target is None:
        raise ServeError(f"domain {domain!r} has no promoted adapter (loraforge promote --domain {domain} ...)")
    routes.swap(domain, target)
    d = routes.domains[domain]
    if d.champion is None:
        raise ServeError(f"domain {domain!r}: {d.refused}")
    t0 = time.perf_counter()
    out = engine.generate(routes.base_of(d), [d.kind.render(request)], [d.champion.adapter_id],
                          [max_tokens or cfg.serve.max_tokens])[0]
    return {"domain": domain, "adapter_id": d.champion.adapter_id, "request": request,
            "output": d.kind.answer(out.text), "tokens": out.completion_tokens,
            "ms": round((time.perf_counter() - t0) * 1000, 1)}


def ask_remote(url: str, domain: str, request: str, max_tokens: int | None = None) -> dict:
    """One answer from a running server, through the openai client (chat completions)."""
    from openai import OpenAI

    client = OpenAI(base_url=url.rstrip("/") + "/v1", api_key=os.environ.get(API_KEY_ENV) or "none", max_retries=2)
    t0 = time.perf_counter()
    kwargs = {"max_tokens": max_tokens} if max_tokens else {}
    r = client.chat.completions.create(model=domain, messages=[{"role": "user", "content": request}], **kwargs)
    return {"domain": domain, "adapter_id": r.system_fingerprint, "request": request,
            "output": r.choices[0].message.content, "tokens": r.usage.completion_tokens if r.usage else None,
            "ms": round((time.perf_counter() - t0) * 1000, 1)}
