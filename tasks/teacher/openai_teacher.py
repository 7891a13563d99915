"""OpenAI-compatible teacher: builds canonical requests and sends batches of them concurrently.

``OpenAITeacher.build_request`` turns a seeded ``RequestSpec`` into a ``TeacherRequest`` (the kind's messages +
sampling params + the kind's output schema as ``response_format``); ``complete_batch`` sends many requests through one
``openai.AsyncOpenAI`` client on aiohttp with bounded concurrency and our own retry policy, and returns one
``TeacherCall`` per request, in order, holding the raw message content (parsing happens downstream with the
tolerant ``parse_teacher_output``). The API key never appears in reprs, errors or logs.

Every attempt waits for the RPM/TPM limiters (``limits.RateLimits``); every request first reserves its
worst-case cost in the run's ``limits.Budget`` and is not sent at all (``status="not_sent"``) once a cap is
reached. Retries (exponential backoff with jitter, or the server's ``Retry-After``) cover 408/429/5xx,
timeouts and connection errors (resets, truncated bodies); a 200 is never retried, whatever its content.
The response body is read raw and only the message content and usage are taken from
it: no model objects are built per call, which keeps the client's share of a core small at 300+ calls/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import os
import random
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

import openai
from pydantic import SecretStr, ValidationError

try:  # the raw HTTP response type of the openai client's transport (httpx2 in openai 3, httpx before)
    from httpx2 import Response as _RawResponse
except ImportError:  # pragma: no cover
    from httpx import Response as _RawResponse

from schemas.config import TeacherConfig
from schemas.example import RequestSpec, TeacherCall, TeacherOutput, TeacherRequest
from tasks.kinds import Kind, get_kind
from tasks.teacher.limits import Budget, RateLimits, cost_usd, estimate_prompt_tokens

log = logging.getLogger(__name__)

MAX_WAIT_S = 30.0
RETRYABLE_STATUS = {408, 429}  # plus every 5xx; other 4xx are final
_SECRET_LIKE = re.compile(r"(?i)\b(bearer\s+\S+|sk-[\w*\-]+|api[_-]?key[\"'=:\s]+\S+)")


def _response_schema(output_model: type[TeacherOutput]) -> dict[str, Any]:
    """A kind's output model's JSON schema, tightened for strict structured outputs (all keys required, no
    extras)."""
    schema = output_model.model_json_schema()
    props = {k: {kk: vv for kk, vv in v.items() if kk not in ("default", "title")}
             for k, v in schema["properties"].items()}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def _is_local(base_url: str | None) -> bool:
    host = (urlparse(base_url).hostname or "") if base_url else ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _retry_after(err: openai.APIStatusError) -> float | None:
    """Seconds the server asks us to wait (``retry-after-ms``, ``retry-after`` seconds or HTTP date), if any."""
    ms, value = err.response.headers.get("retry-after-ms"), err.response.headers.get("retry-after")
    try:
        if ms is not None:
            return max(float(ms) / 1000, 0.0)
        if value is not None:
            return max(float(value) if value.strip().replace(".", "", 1).isdigit()
                       else email.utils.parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError, OverflowError):
        pass
    return None


_SCHEMA_CACHE: dict[type, Any] = {}


def response_format(mode: str, output_model: type[TeacherOutput]) -> dict[str, Any] | None:
    """The ``response_format`` for a structured-output mode (``json_schema`` | ``json_object`` | ``none``)."""
    if mode == "json_schema":
        if output_model not in _SCHEMA_CACHE:
            _SCHEMA_CACHE[output_model] = _response_schema(output_model)
        return {"type": "json_schema", "json_schema": {"name": "teacher_output", "strict": True,
                                                        "schema": _SCHEMA_CACHE[output_model]}}
    return {"type": "json_object"} if mode == "json_object" else None


def build_request(cfg: TeacherConfig, domain: str, spec: RequestSpec, params: dict[str, Any],
                  kind: Kind) -> TeacherRequest:
    """The canonical request for a seeded spec: the kind's messages for it (``kind.teacher_messages``; they name
    topic, difficulty, seed and phrasing style) and ``params`` (``kind.request_params``), sent with the sampling
    parameters and the kind's output schema as ``response_format``."""
    sampling: dict[str, Any] = {"temperature": cfg.temperature, "max_tokens": cfg.max_tokens, "seed": spec.seed}
    if (rf := response_format(cfg.structured_output, kind.output_model)) is not None:
        sampling["response_format"] = rf
    return TeacherRequest(domain=domain, teacher=OpenAITeacher.name, model=cfg.model, spec=spec,
                          messages=kind.teacher_messages(spec, params), params=sampling)


def prompt_chars(req: TeacherRequest) -> int:
    """Characters the server tokenises as prompt: messages plus the response schema, if any."""
    rf = req.params.get("response_format")
    return sum(len(m["content"]) for m in req.messages) + (len(json.dumps(rf)) if rf else 0)


def local_token_count(req: TeacherRequest, completion: str, max_tokens: int) -> tuple[int, int]:
    """(prompt, completion) tokens counted here, for an answer whose server sent no ``usage``: ~3 characters
    per token (more tokens than English or JSON really take, so the budget is never undercharged)."""
    out = estimate_prompt_tokens(len(completion), conservative=True) if completion else 0
    return (estimate_prompt_tokens(prompt_chars(req), conservative=True),
            min(out, int(req.params.get("max_tokens", max_tokens))))


def _maybe_billed(err: openai.APIConnectionError) -> bool:
    """False only when the connection was never made (nothing was sent); a timeout or a reset after sending
    leaves the outcome unknown: the server may have answered, and billed, in full."""
    cause = err.__cause__
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or type(cause).__name__ == "ClientConnectorError":
            return False
        cause = cause.__cause__
    return True


OnCalls = Callable[[list[TeacherRequest], list[TeacherCall]], None]


class _Sink:
    """Hands finished calls to ``on_calls`` in slices while a batch runs (off the event loop: it may write a DB)."""

    def __init__(self, on_calls: OnCalls | None, every: int, interval_s: float) -> None:
        self.on_calls, self.every, self.interval_s = on_calls, every, interval_s
        self.pending: list[tuple[TeacherRequest, TeacherCall]] = []
        self.last = time.monotonic()
        self.lock = asyncio.Lock()

    async def add(self, req: TeacherRequest, call: TeacherCall) -> None:
        if self.on_calls is None:
            return
        self.pending.append((req, call))
        if len(self.pending) >= self.every or time.monotonic() - self.last >= self.interval_s:
            await self.flush()

    async def flush(self) -> None:
        if self.on_calls is None:
            return
        async with self.lock:
            taken, self.pending = self.pending, []
            self.last = time.monotonic()
            if taken:
                reqs, calls = map(list, zip(*taken, strict=True))
                await asyncio.to_thread(self.on_calls, reqs, calls)


class OpenAITeacher:
    """A teacher behind any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, a mock)."""

    name = "openai"

    def __init__(self, cfg: TeacherConfig, *, kind: Kind | None = None, api_key: str | None = None,
                 backoff_base_s: float = 1.0) -> None:
        self.cfg = cfg
        self.kind = kind or get_kind()  # whose prompt and output schema the requests carry
        self.backoff_base_s = backoff_base_s
        self._api_key = SecretStr(self._resolve_key(api_key))

    def __repr__(self) -> str:
        return f"OpenAITeacher(model={self.cfg.model!r}, base_url={self.cfg.base_url!r}, api_key=***)"

    def _resolve_key(self, api_key: str | None) -> str:
        if api_key:
            return api_key
        if env := os.environ.get(self.cfg.api_key_env):
            return env
        name = self.cfg.api_key_env.lower().replace("_", "-")
        try:
            from prefect.blocks.system import Secret

            value = Secret.load(name, _sync=True).get()
            if isinstance(value, str) and value:
                return value
        except Exception as e:  # noqa: BLE001 - any failure means "no such secret"
            log.debug("no Prefect Secret block %r (%s)", name, type(e).__name__)
        if _is_local(self.cfg.base_url):
            return "EMPTY"
        raise ValueError(f"no API key: set the environment variable {self.cfg.api_key_env} "
                         f"or create a Prefect Secret block named {name!r}")

    def _scrub(self, text: str, limit: int = 200) -> str:
        key = self._api_key.get_secret_value()
        if len(key) >= 4:
            text = text.replace(key, "***")
        return _SECRET_LIKE.sub("***", " ".join(text.split()))[:limit]

    # -- requests -------------------------------------------------------------------------------------------
    def build_request(self, domain: str, spec: RequestSpec, params: dict[str, Any]) -> TeacherRequest:
        return build_request(self.cfg, domain, spec, params, self.kind)

    # -- sending --------------------------------------------------------------------------------------------
    def complete_batch(self, requests: list[TeacherRequest], budget: Budget | None = None,
                       on_calls: OnCalls | None = None) -> list[TeacherCall]:
        """Send all requests; safe from plain threads and (via a helper thread) from inside a running loop.

        ``on_calls(requests, calls)``, when given, receives the answers while the batch runs (every
        ``teacher.store_every`` answers or ``teacher.store_interval_s`` seconds, and the rest at the end), so the
        caller can store them before the batch is over."""
        if not requests:
            return []
        work = self.acomplete_batch(requests, budget, on_calls)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(work)
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, work).result()

    def client(self) -> openai.AsyncOpenAI:
        """A new async client on the aiohttp transport; the openai client's own retries are off (ours apply)."""
        return openai.AsyncOpenAI(api_key=self._api_key.get_secret_value(), base_url=self.cfg.base_url,
                                  timeout=self.cfg.timeout_s, max_retries=0, http_client=openai.DefaultAioHttpClient())

    async def acomplete_batch(self, requests: list[TeacherRequest], budget: Budget | None = None,
                              on_calls: OnCalls | None = None) -> list[TeacherCall]:
        """The async core of ``complete_batch`` (for callers already inside an event loop).

        Requests that the budget does not allow come back with ``status="not_sent"`` (never sent, not stored).
        """
        state = {"no_response_format": False}
        sem = asyncio.Semaphore(self.cfg.concurrency)
        limits = RateLimits.from_config(self.cfg)
        budget = budget if budget is not None else Budget()
        started = time.monotonic()
        sink = _Sink(on_calls, self.cfg.store_every, self.cfg.store_interval_s)

        async def one(req: TeacherRequest) -> TeacherCall:
            call = await self._one(client, sem, limits, budget, req, state)
            await sink.add(req, call)
            return call

        async with self.client() as client:
            calls = await asyncio.gather(*(one(r) for r in requests))
        await sink.flush()
        n_ok = sum(c.status == "ok" for c in calls)
        n_unsent = sum(c.status == "not_sent" for c in calls)
        log.info("teacher batch: %d/%d ok, %d not sent (budget) in %.1fs", n_ok, len(calls), n_unsent,
                 time.monotonic() - started)
        return list(calls)

    def _failed(self, req: TeacherRequest, attempts: int, err: BaseException | str, cost: float = 0.0) -> TeacherCall:
        if isinstance(err, str):
            msg = err
        else:
            msg = type(err).__name__
            if isinstance(err, openai.APIStatusError):
                msg += f": HTTP {err.status_code}: {self._scrub(str(err.message), 160)}"
            elif isinstance(err, openai.APIConnectionError):  # name the causes: aiohttp may map refusals to timeouts
                chain, cause = [], err.__cause__
                while cause is not None and len(chain) < 3:
                    chain.append(type(cause).__name__)
                    cause = cause.__cause__
                msg += f" ({' <- '.join(chain)})" if chain else ""
            else:
                msg += f": {self._scrub(str(err), 160)}"
        return TeacherCall(request_hash=req.request_hash, status="failed", attempts=attempts, cost_usd=cost, error=msg)

    def _worst_case(self, req: TeacherRequest) -> tuple[int, float]:
        """(tokens for the TPM limiter, worst-case dollars for the budget) of one request."""
        prompt = estimate_prompt_tokens(prompt_chars(req), conservative=True)
        max_out = int(req.params.get("max_tokens", self.cfg.max_tokens))
        return prompt + max_out, cost_usd(prompt, max_out, self.cfg.price())

    async def _one(self, client: openai.AsyncOpenAI, sem: asyncio.Semaphore, limits: RateLimits, budget: Budget,
                   req: TeacherRequest, state: dict[str, bool]) -> TeacherCall:
        attempts = retries = 0
        fell_back = held = False  # held: this attempt's worst case is reserved in the budget
        charged = 0.0  # what earlier attempts of this request cost (unknown outcomes at their worst case)
        tokens, reserved = self._worst_case(req)
        while True:
            params = req.params
            try:
                async with sem:  # decide on response_format only once a slot is ours: it may just have changed
                    if not held and not budget.try_reserve(reserved, retry=attempts > 0):
                        if attempts == 0:
                            return TeacherCall(request_hash=req.request_hash, status="not_sent", attempts=0,
                                               error=f"budget_exhausted: {budget.exhausted}")
                        return self._failed(req, attempts, f"budget_exhausted: {budget.exhausted} (no room to retry "
                                            f"after {attempts} attempt(s))", charged)
                    held = True
                    await limits.acquire(tokens)
                    attempts += 1
                    if (state["no_response_format"] or fell_back) and "response_format" in params:
                        params = {k: v for k, v in params.items() if k != "response_format"}
                    # The documented way to send a raw request (README "Undocumented endpoints"): the same JSON
                    # that chat.completions.create sends, serialised once here; the client would otherwise walk ~40
                    # TypedDict keys and deep-copy the JSON schema per call (~1 ms CPU, a third of a core at 300/s).
                    payload = json.dumps({"model": req.model, "messages": req.messages, **params}).encode()
                    raw = await client.post("/chat/completions", cast_to=_RawResponse, content=payload,
                                            options={"headers": {"Content-Type": "application/json"}})
                    body = raw.content
            except openai.APIStatusError as e:
                status = e.status_code
                if (status in (400, 422) and "response_format" in params and not fell_back
                        and self.cfg.structured_output_fallback
                        and any(s in f"{e.message} {e.body}" for s in ("response_format", "json_schema"))):
                    fell_back = state["no_response_format"] = True
                    log.info("teacher rejected response_format (HTTP %d); retrying as plain text", status)
                    continue
                if not (status in RETRYABLE_STATUS or status >= 500):
                    budget.settle(reserved, 0.0)
                    return self._failed(req, attempts, e, charged)
                err: Exception = e  # the server said it did nothing: the reservation carries over to the retry
            except openai.APIConnectionError as e:  # includes APITimeoutError, resets and truncated bodies
                err = e
                if _maybe_billed(e):  # sent, outcome unknown: it may have been answered and billed in full
                    budget.settle(reserved, reserved)
                    charged += reserved
                    held = False
            except Exception as e:  # noqa: BLE001 - anything else is not transient: record, do not retry
                budget.settle(reserved, 0.0)
                return self._failed(req, attempts, e, charged)
            else:
                return self._answer(req, attempts, body, budget, reserved, charged)
            if retries >= self.cfg.max_retries:
                if held:
                    budget.settle(reserved, 0.0)
                return self._failed(req, attempts, err, charged)
            retries += 1
            hinted = _retry_after(err) if isinstance(err, openai.APIStatusError) else None
            if hinted is not None:
                wait = min(hinted, MAX_WAIT_S)
            else:
                wait = min(self.backoff_base_s * 2 ** (retries - 1), MAX_WAIT_S) * random.uniform(0.5, 1.0)
            log.debug("teacher request %s: %s; retry %d/%d in %.2fs", req.request_hash,
                      type(err).__name__, retries, self.cfg.max_retries, wait)
            await asyncio.sleep(wait)

    def _answer(self, req: TeacherRequest, attempts: int, body: bytes, budget: Budget,
                reserved: float, charged: float = 0.0) -> TeacherCall:
        """A 200 response: its message content is the raw response (stored before anyone parses it).

        Its cost is the server's ``usage``, or a local token count when it sends none; ``charged`` (earlier
        attempts) is added, so a stored call's ``cost_usd`` is what the request cost in all."""
        try:
            data = json.loads(body)
            choice = data["choices"][0] if data.get("choices") else None
            usage = data.get("usage") or {}
            pt, ct = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        except (ValueError, TypeError, KeyError, AttributeError) as e:  # answered, so probably billed: count it
            pt, ct = local_token_count(req, body.decode("utf-8", "replace"), self.cfg.max_tokens)
            cost = cost_usd(pt, ct, self.cfg.price())
            budget.settle(reserved, cost)
            return self._failed(req, attempts, f"MalformedBody: {type(e).__name__} (HTTP 200, {len(body)} bytes)",
                                charged + cost)
        content = (choice or {}).get("message", {}).get("content") if isinstance(choice, dict) else None
        if not usage:  # no usage from the server: charged by a local (conservative) token count
            pt, ct = local_token_count(req, content if isinstance(content, str) else "", self.cfg.max_tokens)
        cost = cost_usd(pt, ct, self.cfg.price())
        budget.settle(reserved, cost)
        if not isinstance(content, str):
            reason = choice.get("finish_reason") if isinstance(choice, dict) else "no choices"
            return TeacherCall(request_hash=req.request_hash, status="failed", attempts=attempts, prompt_tokens=pt,
                               completion_tokens=ct, cost_usd=charged + cost,
                               error=f"EmptyContent: finish_reason={reason}")
        return TeacherCall(request_hash=req.request_hash, status="ok", raw_response=content, attempts=attempts,
                           prompt_tokens=pt, completion_tokens=ct, cost_usd=charged + cost)


def parse_teacher_output(raw: str, output_model: type[TeacherOutput]) -> TeacherOutput:
    """Parse a teacher reply into a kind's output model: plain JSON, JSON in a ``` fence, or the first JSON object
    embedded in text."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("malformed teacher output: empty response")
    text = raw.strip().lstrip("\ufeff")
    candidates: list[Any] = []
    try:
        whole = json.loads(text)
        candidates.append(json.loads(whole) if isinstance(whole, str) else whole)  # tolerate double encoding
    except json.JSONDecodeError:
        for block in re.findall(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", text, flags=re.DOTALL):
            with contextlib.suppress(json.JSONDecodeError):
                candidates.append(json.loads(block.strip()))
        decoder, end = json.JSONDecoder(), 0
        for m in re.finditer(r"\{", text[:200_000]):
            if m.start() < end or len(candidates) >= 8:
                continue
            try:
                obj, end = decoder.raw_decode(text, m.start())
                candidates.append(obj)
            except json.JSONDecodeError:
                continue
    last_error = "no JSON object found"
    for obj in candidates:
        if not isinstance(obj, dict):
            last_error = f"expected a JSON object, got {type(obj).__name__}"
            continue
        try:
            return output_model.model_validate(obj)
        except ValidationError as e:
            last_error = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'object'}: {x['msg']}" for x in e.errors())
    raise ValueError(f"malformed teacher output: {last_error} (got {raw[:80]!r})")
