"""The request batcher: concurrent requests are gathered for ``window_ms`` and answered by one batched ``generate``
with mixed adapters, on one worker thread that also carries out registry changes between batches (swaps, candidate
preloads) and deletes the adapters nothing keeps attached after a batch, off the swap's path.

Requests come from the event loop (``submit``) and results go back to it with ``call_soon_threadsafe``; a full
queue is refused at once (the HTTP layer answers 429 + Retry-After). Routes are resolved when a batch is formed,
so the adapter that answers a request was the domain's champion at that moment.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tasks.serve.engine import Engine, Output
from tasks.serve.routes import RouteError, Routes

log = logging.getLogger("loraforge.serve")


class QueueFull(RuntimeError):
    pass


class Metrics:
    """The server's Prometheus metrics, in a registry of its own (several servers can live in one test process)."""

    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.requests = Counter("loraforge_requests", "Requests answered or refused", ["model", "endpoint", "status"],
                                registry=r)
        self.errors = Counter("loraforge_errors", "Requests answered with an error", ["code"], registry=r)
        self.latency = Histogram("loraforge_request_seconds", "Request latency (arrival → last byte of the answer)",
                                 ["endpoint"], buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30), registry=r)
        self.tokens = Counter("loraforge_tokens", "Tokens processed", ["kind"], registry=r)
        self.batch_size = Histogram("loraforge_batch_size", "Requests per batched generate",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.queue_depth = Gauge("loraforge_queue_depth", "Requests waiting for a batch", registry=r)
        self.swaps = Counter("loraforge_adapter_swaps", "Champion changes applied (switch; a load first if cold)",
                             ["domain"], registry=r)
        self.swap_seconds = Histogram("loraforge_adapter_swap_seconds", "Adapter load (cold swaps only) + switch time",
                                      buckets=(.001, .005, .01, .025, .05, .1, .2, .5, 1, 2, 5), registry=r)
        self.adapter_loads = Counter("loraforge_adapter_loads", "Adapters loaded, by when: start (a champion at "
                                     "start-up), preload (a candidate before its promotion) or swap (on a swap's path)",
                                     ["domain", "when"], registry=r)
        self.attached = Gauge("loraforge_adapters_attached", "Adapters attached, by role: champion, candidate "
                              "(preloaded) or former (a replaced champion kept warm)", ["adapter_id", "role"],
                              registry=r)
        self.batch_seconds = Histogram("loraforge_batch_seconds", "Batched generate time (a swap waits for the batch "
                                       "in flight, then for the first batch of the new adapter)",
                                       buckets=(.01, .02, .03, .05, .075, .1, .125, .15, .2, .25, .3, .4, .5, .75, 1,
                                                2, 5), registry=r)


@dataclass
class Job:
    model: str
    prompt: str
    max_tokens: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    stream: asyncio.Queue | None = None
    cancelled: bool = False
    enqueued: float = field(default_factory=time.monotonic)
    adapter_id: str | None = None  # set when the batch is formed


class Batcher(threading.Thread):
    def __init__(self, engine: Engine, routes: Routes, metrics: Metrics, *, window_ms: float, max_batch: int,
                 queue_limit: int):
        super().__init__(name="loraforge-batcher", daemon=True)
        self.engine, self.routes, self.metrics = engine, routes, metrics
        self.window_s, self.max_batch, self.queue_limit = window_ms / 1000, max_batch, queue_limit
        self.jobs: deque[Job] = deque()
        self.controls: deque = deque()
        self.cond = threading.Condition()
        self.stopping = False
        self.busy = False
        self.shown: list[tuple[str, str]] | None = None  # the attachments the gauge shows
        routes.on_load = lambda domain, adapter_id, when, seconds: metrics.adapter_loads.labels(domain, when).inc()
        for (domain, when), n in routes.loads.items():  # loads made before the batcher existed (start-up)
            metrics.adapter_loads.labels(domain, when).inc(n)

    # ------------------------------------------------------------------ from other threads
    def submit(self, job: Job) -> None:
        with self.cond:
            if len(self.jobs) >= self.queue_limit:
                raise QueueFull(f"{len(self.jobs)} requests are waiting (serve.queue_limit {self.queue_limit})")
            self.jobs.append(job)
            self.metrics.queue_depth.set(len(self.jobs))
            self.cond.notify()

    def control(self, change: tuple, done) -> None:
        """A registry change the watcher noticed, applied between batches (``Routes.apply``); ``done()`` after."""
        with self.cond:
            self.controls.append((change, done))
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()

    # ------------------------------------------------------------------ the worker thread
    def run(self) -> None:
        while True:
            with self.cond:
                while not (self.jobs or self.controls or self.stopping):
                    self.cond.wait()
                if self.stopping and not self.jobs:
                    return
                controls = list(self.controls)
                self.controls.clear()
            for change, done in controls:
                try:
                    self.routes.apply(change)
                except Exception:  # a registry change that fails leaves the routes as they were
                    log.exception("registry change %s failed", change)
                finally:
                    done()
            batch = self._gather()
            if batch:
                try:
                    self._answer(batch)
                except Exception as e:  # one failed batch fails its requests, never the server
                    log.exception("batch of %d failed", len(batch))
                    for j in batch:
                        self._fail(j, e)
            self._tidy()

    def _tidy(self) -> None:
        """After a batch (its answers already on their way): delete what nothing keeps attached, update the gauge."""
        try:
            self.routes.collect()
            now = self.routes.attachments()
            if now != self.shown:
                self.metrics.attached.clear()
                for adapter_id, role in now:
                    self.metrics.attached.labels(adapter_id, role).set(1)
                self.shown = now
        except Exception:
            log.exception("deleting unused adapters failed; they stay attached")

    def _gather(self) -> list[Job]:
        with self.cond:
            if not self.jobs:
                return []
            deadline = self.jobs[0].enqueued + self.window_s
            while len(self.jobs) < self.max_batch and not self.controls and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(left)
            batch = [self.jobs.popleft() for _ in range(min(self.max_batch, len(self.jobs)))]
            self.metrics.queue_depth.set(len(self.jobs))
        return [j for j in batch if not j.cancelled]

    def _answer(self, batch: list[Job]) -> None:
        for domain, target in self.routes.changed():  # a pointer moved since the watcher last looked: the batch
            self.routes.swap(domain, target)          # formed now is answered by the champion of now
        groups: dict[str, list[tuple[Job, str]]] = {}
        for j in batch:
            try:
                d, adapter = self.routes.resolve(j.model)
            except RouteError as e:
                self._fail(j, e)
                continue
            j.adapter_id = adapter
            groups.setdefault(d.base_key, []).append((j, adapter))
        for key, rows in groups.items():  # one generate per base model (usually one)
            jobs = [j for j, _ in rows]
            self.metrics.batch_size.observe(len(jobs))

            def on_token(i: int, text: str, jobs=jobs) -> None:
                if jobs[i].stream is not None:
                    jobs[i].loop.call_soon_threadsafe(jobs[i].stream.put_nowait, ("delta", text))

            t0 = time.perf_counter()
            outs = self.engine.generate(self.engine.bases[key], [j.prompt for j in jobs], [a for _, a in rows],
                                        [j.max_tokens for j in jobs], on_token=on_token,
                                        cancelled=lambda i, jobs=jobs: jobs[i].cancelled)
            self.metrics.batch_seconds.observe(time.perf_counter() - t0)
            for j, out in zip(jobs, outs, strict=True):
                self.metrics.tokens.labels("prompt").inc(out.prompt_tokens)
                self.metrics.tokens.labels("completion").inc(out.completion_tokens)
                self._done(j, out)

    @staticmethod
    def _done(j: Job, out: Output) -> None:
        def deliver() -> None:
            if j.stream is not None:
                j.stream.put_nowait(("done", out))
            if not j.future.done():
                j.future.set_result(out)
        j.loop.call_soon_threadsafe(deliver)

    @staticmethod
    def _fail(j: Job, e: Exception) -> None:
        def deliver() -> None:
            if j.stream is not None:
                j.stream.put_nowait(("error", e))
            if not j.future.done():
                j.future.set_exception(e)
        j.loop.call_soon_threadsafe(deliver)
