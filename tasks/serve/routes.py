"""A live view of the registry: which adapter answers for which domain.

The source is each domain's pointer ``$LORAFORGE_HOME/adapters/<domain>/promoted`` (a symlink that promote,
rollback and the gate move atomically). A watcher thread reads the links every ``poll_s`` (a ``readlink`` per
domain, no DuckDB connection: holding one would lock ``loraforge promote`` out); when one moves it asks the
batcher's worker thread to swap: load the new adapter under its own immutable name (its adapter id), switch the
domain's route, and delete the old adapter once no route points at it. Routes are resolved by that same thread
when a batch is formed, after one more look at the pointers, so a request is answered entirely by the adapter
that was the champion at that moment.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from schemas.config import DomainConfig
from tasks.kinds import get_kind
from tasks.serve.engine import BASE, AdapterInfo, Engine, adapter_info

log = logging.getLogger("loraforge.serve")


class RouteError(LookupError):
    """A model name that cannot be answered: ``status`` is the HTTP status, ``code`` the OpenAI error code."""

    def __init__(self, message: str, status: int = 404, code: str = "model_not_found"):
        super().__init__(message)
        self.status, self.code = status, code


@dataclass
class Domain:
    cfg: DomainConfig
    kind: object  # the kind's serving side: render, answer, test_panel (tasks/kinds/<kind>/)
    base_key: str | None = None  # the base every adapter of the domain must have been trained on
    base_model: str | None = None
    champion: AdapterInfo | None = None
    pointer: str | None = None  # last pointer target acted on
    refused: str | None = None  # why the pointer's adapter is not served
    history: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, adapter id) of route changes


class Routes:
    """Domains → champion adapters on the engine; every mutating method runs on the batcher's worker thread."""

    def __init__(self, engine: Engine, adapters_dir: Path, cfgs: list[DomainConfig], *, base_models: dict[str, str]):
        self.engine, self.adapters_dir = engine, Path(adapters_dir)
        self.domains = {c.name: Domain(c, get_kind(c.task.kind).serving(c)) for c in cfgs}
        self.base_models = base_models  # domain → its configured base directory (for a domain with no champion)
        self.swaps = 0
        self.keep_warm = cfgs[0].serve.keep_warm_adapters if cfgs else 0
        self.warm: list[str] = []  # released adapters still attached, least recently released first
        self.on_swap = None  # callback(domain, old_id, new_id, seconds) for metrics

    # ---------------------------------------------------------------- model names
    def models(self) -> list[dict]:
        out = []
        for name, d in self.domains.items():
            aid = d.champion.adapter_id if d.champion else None
            out.append({"id": name, "parent": d.base_model, "root": aid, "adapter_id": aid, "domain": name})
            if aid:
                out.append({"id": f"{name}@{aid}", "parent": d.base_model, "root": aid, "adapter_id": aid,
                            "domain": name})
            out.append({"id": f"{name}@base", "parent": d.base_model, "root": BASE, "adapter_id": BASE,
                        "domain": name})
        return out

    def domain_of(self, model: str) -> Domain:
        """The domain a model name belongs to (request validation, before queueing)."""
        name = model.split("@", 1)[0]
        if name not in self.domains:
            raise RouteError(f"unknown model {model!r}; served models: {', '.join(self.domains)} (see GET /v1/models)")
        return self.domains[name]

    def resolve(self, model: str) -> tuple[Domain, str]:
        """(domain, adapter name to answer with), at the moment a batch is formed."""
        d = self.domain_of(model)
        _, _, pin = model.partition("@")
        if pin == "base":
            if d.base_key is None:
                raise RouteError(f"domain {d.cfg.name!r}: its base model is not loaded", 503, "model_not_ready")
            return d, BASE
        if d.champion is None:
            why = d.refused or "no promoted adapter yet (loraforge promote)"
            raise RouteError(f"domain {d.cfg.name!r} has no adapter to answer with: {why}", 503, "no_adapter")
        if pin and pin != d.champion.adapter_id:
            aid = d.champion.adapter_id
            raise RouteError(f"model {model!r} is not served: {d.cfg.name!r} is answered by {aid} now (ask "
                             f"{d.cfg.name!r} or {d.cfg.name}@{aid})")
        return d, d.champion.adapter_id

    def base_of(self, d: Domain):
        return self.engine.bases[d.base_key]

    # ---------------------------------------------------------------- registry changes
    def read_pointer(self, domain: str) -> str | None:
        try:
            return os.readlink(self.adapters_dir / domain / "promoted")
        except OSError:
            return None

    def changed(self) -> list[tuple[str, str | None]]:
        """(domain, target) for every pointer that differs from what was last acted on (cheap: one readlink each)."""
        return [(n, t) for n, d in self.domains.items() if (t := self.read_pointer(n)) != d.pointer]

    def load_initial(self) -> None:
        for name, d in self.domains.items():
            target = self.read_pointer(name)
            if target is None:  # no champion yet: load the configured base so domain@base answers
                d.base_model = self.base_models[name]
                d.base_key = self.engine.base(d.base_model).key
                d.pointer = None
                log.warning("domain %s has no promoted adapter yet; watching its pointer", name)
            self.swap(name, target)

    def swap(self, domain: str, target: str | None) -> None:
        """Make the pointer's adapter the domain's route (load under its id, switch, delete the old one)."""
        d = self.domains[domain]
        d.pointer = target
        if target is None:
            if d.champion is not None:
                old, d.champion = d.champion.adapter_id, None
                d.history.append((time.monotonic(), ""))
                self._release(old)
            return
        t0 = time.perf_counter()
        try:
            info = adapter_info(target)
            key = info.base_key
        except (OSError, ValueError) as e:
            d.refused = f"adapter at {target} cannot be read: {e}"
            log.error("domain %s: %s", domain, d.refused)
            return
        if d.base_key is not None and key != d.base_key:
            d.refused = (f"adapter {info.adapter_id} was trained on base {info.base_model} (content hash {key}); "
                         f"{domain} is served on {d.base_model} ({d.base_key}): refused")
            log.error("domain %s: %s", domain, d.refused)
            return
        if d.champion is not None and d.champion.adapter_id == info.adapter_id:
            d.refused = None  # e.g. a rollback from a refused adapter back to the one still answering
            return
        try:
            self.engine.load_adapter(info)
        except Exception as e:  # a broken adapter never takes the server (or the old route) down
            d.refused = f"adapter {info.adapter_id} could not be loaded: {type(e).__name__}: {e}"
            log.exception("domain %s: %s", domain, d.refused)
            return
        d.base_key, d.base_model, d.refused = key, info.base_model, None
        self.warm = [a for a in self.warm if a != info.adapter_id]  # a champion again: no longer a release candidate
        old, d.champion = d.champion, info  # the switch: the next batch formed answers with the new adapter
        d.history.append((time.monotonic(), info.adapter_id))
        if old is not None:
            self.swaps += 1
            self._release(old.adapter_id)
        seconds = time.perf_counter() - t0
        log.info("domain %s → %s (%.0f ms)", domain, info.adapter_id, seconds * 1000)
        if self.on_swap:
            self.on_swap(domain, old.adapter_id if old else None, info.adapter_id, seconds)

    def _routed(self, adapter_id: str) -> bool:
        return any(d.champion is not None and d.champion.adapter_id == adapter_id for d in self.domains.values())

    def _release(self, adapter_id: str) -> None:
        """An adapter no route points at stays attached among the ``keep_warm`` most recently released (its name is
        its immutable id, so a later route to it is the very same weights); older ones are deleted. Called between
        batches, so nothing in flight uses what is deleted."""
        if self._routed(adapter_id):
            return
        self.warm = [a for a in self.warm if a != adapter_id] + [adapter_id]
        while len(self.warm) > self.keep_warm:
            oldest = self.warm.pop(0)
            if not self._routed(oldest):
                self.engine.delete_adapter(oldest)


class Watcher(threading.Thread):
    """Polls the pointers every ``poll_s`` and hands changes to ``submit`` (the batcher's control queue)."""

    def __init__(self, routes: Routes, submit, poll_s: float = 0.02):
        super().__init__(name="loraforge-registry-watch", daemon=True)
        self.routes, self.submit, self.poll_s = routes, submit, poll_s
        self.stop = threading.Event()
        self.pending: set[tuple[str, str | None]] = set()

    def run(self) -> None:
        while not self.stop.wait(self.poll_s):
            try:
                for change in self.routes.changed():
                    if change not in self.pending:
                        self.pending.add(change)
                        self.submit(change, lambda c=change: self.pending.discard(c))
            except Exception:  # never let the watcher die on one odd pointer
                log.exception("registry watch failed; retrying")
