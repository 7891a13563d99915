"""OpenAI-compatible teacher: builds canonical requests and sends batches of them concurrently.

``OpenAITeacher.build_request`` turns a seeded ``RequestSpec`` into a ``TeacherRequest`` (messages + sampling
params + a JSON-schema ``response_format``); ``complete_batch`` sends many requests through one
``openai.AsyncOpenAI`` client on aiohttp with bounded concurrency and our own retry policy, and returns one
``TeacherCall`` per request, in order, holding the raw message content (parsing happens downstream with the
tolerant ``parse_teacher_output``). The API key never appears in reprs, errors or logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import json
import logging
import os
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

import openai
from pydantic import SecretStr, ValidationError

from schemas.config import TeacherConfig
from schemas.example import RequestSpec, TeacherCall, TeacherOutput, TeacherRequest

log = logging.getLogger(__name__)

SYSTEM_PROMPT = ("You write training data for a model that turns natural-language requests into regular "
                 "expressions. Answer with a single JSON object and nothing else.")
STYLES = ("a terse command, as typed into a search box", "a polite question",
          "a precise specification with explicit constraints", "casual chat, as a developer would type it",
          "a requirement taken from a ticket or code review",
          "a description by example, mentioning what should and should not match")
MAX_WAIT_S = 30.0
RETRYABLE_STATUS = {408, 429}  # plus every 5xx; other 4xx are final
_SECRET_LIKE = re.compile(r"(?i)\b(bearer\s+\S+|sk-[\w*\-]+|api[_-]?key[\"'=:\s]+\S+)")


def _response_schema() -> dict[str, Any]:
    """TeacherOutput's JSON schema, tightened for strict structured outputs (all keys required, no extras)."""
    schema = TeacherOutput.model_json_schema()
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


class OpenAITeacher:
    """A teacher behind any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, a mock)."""

    name = "openai"

    def __init__(self, cfg: TeacherConfig, *, api_key: str | None = None, backoff_base_s: float = 1.0) -> None:
        self.cfg = cfg
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
    def build_request(self, domain: str, spec: RequestSpec, dialect: str, n_positives: int,
                      n_negatives: int) -> TeacherRequest:
        style = STYLES[int(hashlib.sha256(f"style:{spec.seed}".encode()).hexdigest(), 16) % len(STYLES)]
        user = "\n".join([
            "Write ONE training example for a regex-writing assistant.",
            f"topic: {spec.topic}",
            f"difficulty: {spec.difficulty} (1 = simple; higher = more parts, classes and quantifiers)",
            f"seed: {spec.seed}",
            f"style: {style}",
            f"dialect: {dialect}",
            "",
            "Return a JSON object with exactly these keys:",
            f'- "description": the request a user might type, phrased as {style}; say what to match, not how.',
            (f'- "regex": only the regex, in the {dialect} dialect, meant for full-match semantics '
             "(the whole string must match), without ^ or $ anchors, without delimiters or flags."),
            f'- "positives": {n_positives} distinct strings that the regex fully matches.',
            f'- "negatives": {n_negatives} distinct, near-miss strings that the regex does not fully match.',
            "Use the seed to vary your choice of subject within the topic.",
        ])
        params: dict[str, Any] = {"temperature": self.cfg.temperature, "max_tokens": self.cfg.max_tokens,
                                  "seed": spec.seed, "response_format": {"type": "json_schema", "json_schema": {
                                      "name": "teacher_output", "strict": True, "schema": _response_schema()}}}
        return TeacherRequest(domain=domain, teacher=self.name, model=self.cfg.model, spec=spec,
                              messages=[{"role": "system", "content": SYSTEM_PROMPT},
                                        {"role": "user", "content": user}], params=params)

    # -- sending --------------------------------------------------------------------------------------------
    def complete_batch(self, requests: list[TeacherRequest]) -> list[TeacherCall]:
        """Send all requests; safe from plain threads and (via a helper thread) from inside a running loop."""
        if not requests:
            return []
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.acomplete_batch(requests))
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self.acomplete_batch(requests)).result()

    async def acomplete_batch(self, requests: list[TeacherRequest]) -> list[TeacherCall]:
        """The async core of ``complete_batch`` (for callers already inside an event loop)."""
        state = {"no_response_format": False}
        sem = asyncio.Semaphore(self.cfg.concurrency)
        started = time.monotonic()
        async with openai.AsyncOpenAI(
            api_key=self._api_key.get_secret_value(), base_url=self.cfg.base_url, timeout=self.cfg.timeout_s,
            max_retries=0, http_client=openai.DefaultAioHttpClient(),
        ) as client:
            calls = await asyncio.gather(*(self._one(client, sem, r, state) for r in requests))
        n_ok = sum(c.status == "ok" for c in calls)
        log.info("teacher batch: %d/%d ok in %.1fs", n_ok, len(calls), time.monotonic() - started)
        return list(calls)

    def _failed(self, req: TeacherRequest, attempts: int, err: BaseException | str) -> TeacherCall:
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
        return TeacherCall(request_hash=req.request_hash, status="failed", attempts=attempts, error=msg)

    async def _one(self, client: openai.AsyncOpenAI, sem: asyncio.Semaphore, req: TeacherRequest,
                   state: dict[str, bool]) -> TeacherCall:
        attempts = retries = 0
        fell_back = False
        while True:
            attempts += 1
            params = dict(req.params)
            try:
                async with sem:  # decide on response_format only once a slot is ours: it may just have changed
                    if state["no_response_format"] or fell_back:
                        params.pop("response_format", None)
                    resp = await client.chat.completions.create(
                        model=req.model, messages=req.messages, **params)  # type: ignore[arg-type]
            except openai.APIStatusError as e:
                status = e.status_code
                if (status in (400, 422) and "response_format" in params and not fell_back
                        and any(s in f"{e.message} {e.body}" for s in ("response_format", "json_schema"))):
                    fell_back = state["no_response_format"] = True
                    log.info("teacher rejected response_format (HTTP %d); retrying as plain text", status)
                    continue
                if not (status in RETRYABLE_STATUS or status >= 500):
                    return self._failed(req, attempts, e)
                err: Exception = e
            except openai.APIConnectionError as e:  # includes APITimeoutError
                err = e
            except Exception as e:  # noqa: BLE001 - malformed bodies etc.: record, do not retry
                return self._failed(req, attempts, e)
            else:
                if not resp.choices or resp.choices[0].message.content is None:
                    reason = resp.choices[0].finish_reason if resp.choices else "no choices"
                    return self._failed(req, attempts, f"EmptyContent: finish_reason={reason}")
                usage = resp.usage
                return TeacherCall(request_hash=req.request_hash, status="ok",
                                   raw_response=resp.choices[0].message.content, attempts=attempts,
                                   prompt_tokens=usage.prompt_tokens if usage else 0,
                                   completion_tokens=usage.completion_tokens if usage else 0)
            if retries >= self.cfg.max_retries:
                return self._failed(req, attempts, err)
            retries += 1
            hinted = _retry_after(err) if isinstance(err, openai.APIStatusError) else None
            if hinted is not None:
                wait = min(hinted, MAX_WAIT_S)
            else:
                wait = min(self.backoff_base_s * 2 ** (retries - 1), MAX_WAIT_S) * random.uniform(0.5, 1.0)
            log.debug("teacher request %s: %s; retry %d/%d in %.2fs", req.request_hash,
                      type(err).__name__, retries, self.cfg.max_retries, wait)
            await asyncio.sleep(wait)


def parse_teacher_output(raw: str) -> TeacherOutput:
    """Parse a teacher reply: plain JSON, JSON in a ``` fence, or the first JSON object embedded in text."""
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
            return TeacherOutput.model_validate(obj)
        except ValidationError as e:
            last_error = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'object'}: {x['msg']}" for x in e.errors())
    raise ValueError(f"malformed teacher output: {last_error} (got {raw[:80]!r})")
