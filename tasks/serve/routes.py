"""A live view of the registry: which adapter answers for which domain, and which others are attached ahead of time.

The source is each domain's pointer ``$LORAFORGE_HOME/adapters/<domain>/promoted`` (a symlink that promote,
rollback and the gate move atomically). A watcher thread reads the links every ``poll_s`` (a ``readlink`` per
domain, no DuckDB connection: holding one would lock ``loraforge promote`` out); when one moves it asks the
batcher's worker thread to swap: switch the domain's route to the new adapter, attached under its own immutable name
(its adapter id). Routes are resolved by that same thread when a batch is formed, after one more look at the
pointers, so a request is answered entirely by the adapter that was the champion at that moment.

A swap waits for the batch in flight and then for the first batch of the new adapter; a PEFT load on top of that
(tiny student, 2-core CPU: ~30 ms quiet, 60-90 ms under the swap bench's load) is kept off its path. The
watcher also notices new complete adapter directories of the served domains (``adapter_config.json``, weights and
``metrics.json``, which training writes last) and the worker attaches the newest ``serve.preload_candidates`` of each
domain between batches, on the domain's own base only; the ``serve.keep_warm_adapters`` most recently replaced
champions stay attached too. So the gate promoting a fresh candidate, a rollback and a re-promotion are route
switches. Attached adapters that none of these keeps are deleted after the next batch (``collect``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from schemas.config import DomainConfig
from tasks.kinds import get_kind
from tasks.serve.engine import BASE, AdapterInfo, Engine, adapter_info

log = logging.getLogger("loraforge.serve")
WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
SCAN_S = 0.25  # how often the watcher lists the served domains' adapter directories for new candidates


def candidates(domain_dir: Path) -> list[Path]:
    """Complete adapter directories under ``domain_dir``, oldest first (by when their metrics.json was written):
    ``adapter_config.json``, weights and ``metrics.json`` (training writes it last). A directory still being written,
    the ``promoted`` link and the registry's temporary links are not candidates."""
    found = []
    try:
        entries = list(os.scandir(domain_dir))
    except OSError:
        return []
    for e in entries:
        if e.name.startswith(".") or not e.is_dir(follow_symlinks=False):
            continue
        path = Path(e.path)
        try:
            written = (path / "metrics.json").stat().st_mtime_ns
        except OSError:
            continue
        if (path / "adapter_config.json").is_file() and any((path / w).is_file() for w in WEIGHTS):
            found.append((written, e.name, path))
    return [path for *_, path in sorted(found)]


def newest(items: list, n: int) -> list:
    return items[len(items) - n:] if n > 0 else []


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
    preloaded: list[str] = field(default_factory=list)  # candidates attached before any promotion, oldest first
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
        self.noticed: set[str] = set()  # candidate directories already considered for preloading (watcher's seed)
        self.loads: Counter = Counter()  # (domain, when) → adapters loaded; when: start | preload | swap
        self.on_swap = None  # callback(domain, old_id, new_id, seconds) for metrics
        self.on_load = None  # callback(domain, adapter_id, when, seconds) for metrics

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
        """Start-up: every domain's champion, then the newest candidates already written (before serving)."""
        for name, d in self.domains.items():
            target = self.read_pointer(name)
            if target is None:  # no champion yet: load the configured base so domain@base answers
                d.base_model = self.base_models[name]
                d.base_key = self.engine.base(d.base_model).key
                d.pointer = None
                log.warning("domain %s has no promoted adapter yet; watching its pointer", name)
            self.swap(name, target, when="start")
        for name, d in self.domains.items():
            found = candidates(self.adapters_dir / name)
            self.noticed.update(map(str, found))
            routed = d.champion.adapter_id if d.champion else None
            for path in newest([p for p in found if p.name != routed], d.cfg.serve.preload_candidates):
                self.preload(name, str(path))

    def apply(self, change: tuple[str, str, str | None]) -> None:
        """Carry out what the watcher noticed: ``("swap", domain, pointer target)`` or ``("preload", domain, dir)``."""
        what, domain, target = change
        if what == "swap":
            self.swap(domain, target)
        elif what == "preload" and target is not None:
            self.preload(domain, target)

    def swap(self, domain: str, target: str | None, when: str = "swap") -> None:
        """Make the pointer's adapter the domain's route: switch to it, loading it under its id first only if it is
        not attached yet (a cold swap); the old one is released."""
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
        cold = info.adapter_id not in self.engine.attached()
        try:
            self.engine.load_adapter(info)
        except Exception as e:  # a broken adapter never takes the server (or the old route) down
            d.refused = f"adapter {info.adapter_id} could not be loaded: {type(e).__name__}: {e}"
            log.exception("domain %s: %s", domain, d.refused)
            return
        if cold:
            self._loaded(domain, info.adapter_id, when, time.perf_counter() - t0)
        d.base_key, d.base_model, d.refused = key, info.base_model, None
        self.warm = [a for a in self.warm if a != info.adapter_id]  # a champion again: no longer a release candidate
        d.preloaded = [a for a in d.preloaded if a != info.adapter_id]  # routed now: no longer a waiting candidate
        old, d.champion = d.champion, info  # the switch: the next batch formed answers with the new adapter
        d.history.append((time.monotonic(), info.adapter_id))
        if old is not None:
            self.swaps += 1
            self._release(old.adapter_id)
        seconds = time.perf_counter() - t0
        log.info("domain %s → %s (%.0f ms, %s)", domain, info.adapter_id, seconds * 1000,
                 "loaded now" if cold else "already attached")
        if self.on_swap:
            self.on_swap(domain, old.adapter_id if old else None, info.adapter_id, seconds)

    def preload(self, domain: str, path: str) -> None:
        """Attach a candidate of ``domain`` under its id before any promotion, so that promoting it is a route switch.
        Only on the base directory the domain is served on (no hash of another base on this thread, no second base
        loaded for a candidate); the domain keeps its newest ``serve.preload_candidates``. A candidate that cannot be
        read, is on another base or fails to load is passed over: promoting it refuses or loads it then, as before."""
        d = self.domains[domain]
        keep = d.cfg.serve.preload_candidates
        if keep == 0:
            return
        try:
            info = adapter_info(path)
        except (OSError, ValueError) as e:
            log.warning("domain %s: candidate at %s not preloaded: %s", domain, path, e)
            return
        if info.adapter_id in self.engine.attached():  # a champion or a warm former one: nothing to load
            return
        base = self.engine.bases.get(d.base_key) if d.base_key else None
        try:
            same = base is not None and Path(info.base_model).resolve() == Path(base.path).resolve() \
                and info.base_key == d.base_key
        except (OSError, ValueError):
            same = False
        if not same:
            log.info("domain %s: candidate %s not preloaded: trained on base %s, not on the one %s is served on (%s)",
                     domain, info.adapter_id, info.base_model or "?", domain, base.path if base else "none loaded")
            return
        t0 = time.perf_counter()
        try:
            self.engine.load_adapter(info)
        except Exception as e:  # a broken candidate never takes the server down
            log.warning("domain %s: candidate %s not preloaded: %s: %s", domain, info.adapter_id, type(e).__name__, e)
            return
        seconds = time.perf_counter() - t0
        d.preloaded = [a for a in d.preloaded if a != info.adapter_id] + [info.adapter_id]
        del d.preloaded[:-keep]  # the oldest beyond the count go (``collect`` deletes them after the next batch)
        self._loaded(domain, info.adapter_id, "preload", seconds)
        log.info("domain %s: candidate %s preloaded (%.0f ms)", domain, info.adapter_id, seconds * 1000)

    def _loaded(self, domain: str, adapter_id: str, when: str, seconds: float) -> None:
        self.loads[(domain, when)] += 1
        if self.on_load:
            self.on_load(domain, adapter_id, when, seconds)

    def _routed(self, adapter_id: str) -> bool:
        return any(d.champion is not None and d.champion.adapter_id == adapter_id for d in self.domains.values())

    def _release(self, adapter_id: str) -> None:
        """An adapter no route points at stays attached among the ``keep_warm`` most recently released (its name is
        its immutable id, so a later route to it is the very same weights); ``collect`` deletes older ones."""
        if self._routed(adapter_id):
            return
        self.warm = [a for a in self.warm if a != adapter_id] + [adapter_id]
        while len(self.warm) > self.keep_warm:
            self.warm.pop(0)

    def attachments(self) -> list[tuple[str, str]]:
        """(adapter id, role) of every adapter that stays attached: ``champion``, ``candidate`` (preloaded) or
        ``former`` (a replaced champion kept warm)."""
        roles = {a: "former" for a in self.warm}
        roles |= {a: "candidate" for d in self.domains.values() for a in d.preloaded}
        roles |= {d.champion.adapter_id: "champion" for d in self.domains.values() if d.champion}
        return sorted(roles.items())

    def collect(self) -> None:
        """Delete attached adapters nothing keeps (no route, not warm, not a preloaded candidate). The worker runs it
        after a batch: the deletes are off the swap's path, and nothing in flight uses what is deleted."""
        keep = {a for a, _ in self.attachments()}
        for adapter_id in sorted(self.engine.attached() - keep):
            self.engine.delete_adapter(adapter_id)


class Watcher(threading.Thread):
    """Polls the pointers every ``poll_s`` and, every ``scan_s``, the served domains' adapter directories for new
    complete candidates; hands what it finds to ``submit`` (the batcher's control queue) as ``Routes.apply`` changes."""

    def __init__(self, routes: Routes, submit, poll_s: float = 0.02, scan_s: float = SCAN_S):
        super().__init__(name="loraforge-registry-watch", daemon=True)
        self.routes, self.submit, self.poll_s, self.scan_s = routes, submit, poll_s, scan_s
        self.stop = threading.Event()
        self.pending: set[tuple] = set()
        self.noticed = set(routes.noticed)  # candidates there at start-up were considered by ``load_initial``
        self.next_scan = 0.0

    def run(self) -> None:
        while not self.stop.wait(self.poll_s):
            try:
                for domain, target in self.routes.changed():
                    self._submit(("swap", domain, target))
                if time.monotonic() >= self.next_scan:
                    self.next_scan = time.monotonic() + self.scan_s
                    for domain, path in self.new_candidates():
                        self._submit(("preload", domain, path))
            except Exception:  # never let the watcher die on one odd pointer or directory
                log.exception("registry watch failed; retrying")

    def new_candidates(self) -> list[tuple[str, str]]:
        """(domain, directory) of candidates complete since the last look: the newest ``preload_candidates`` of each
        domain (older ones found in the same look would be evicted at once, so they are passed over)."""
        out = []
        for name, d in self.routes.domains.items():
            fresh = [str(p) for p in candidates(self.routes.adapters_dir / name) if str(p) not in self.noticed]
            self.noticed.update(fresh)
            out += [(name, path) for path in newest(fresh, d.cfg.serve.preload_candidates)]
        return out

    def _submit(self, change: tuple) -> None:
        if change not in self.pending:
            self.pending.add(change)
            self.submit(change, lambda c=change: self.pending.discard(c))
