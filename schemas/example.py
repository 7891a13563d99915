"""Data shapes for teacher requests, raw teacher calls and training examples (each defined once)."""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def content_hash(*parts: Any, n: int = 16) -> str:
    """Stable short hash of JSON-serialisable parts (used for request, example and dataset ids)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:n]


class FocusHint(BaseModel):
    """What a focused request answers (tasks/focus.py): an evaluation item the champion failed. The teacher is asked
    for a *new, different* request of the same kind — same concept, topic and difficulty, other values and words —
    never for that item again (decontamination keeps the item itself out of training)."""

    model_config = ConfigDict(frozen=True)
    failure_id: str  # the failure report's id of the item (lineage: which failure an example answers)
    request: str  # the failing request as a person typed it (an LLM teacher sees it as the example not to copy)
    concept: str | None = None  # the item's concept label, where known (a kind's grammar may honour it)

    def prompt_lines(self) -> list[str]:
        """Lines a kind's LLM prompt appends (``Kind.teacher_messages``): the failing request as the example."""
        return ["",
                "The student model got the following request wrong. Write a NEW, different request of the same kind"
                + (f" (concept: {self.concept})" if self.concept else "")
                + " with other values and other wording; do not copy it or rephrase it one-to-one:",
                f"example request: {self.request}"]


class RequestSpec(BaseModel):
    """The seeded spec that makes request *i* different from request *j* (topic × difficulty × style × seed)."""

    model_config = ConfigDict(frozen=True)
    index: int
    seed: int
    topic: str
    difficulty: int
    style: str | None = None  # phrasing style (tasks/teacher/phrasing.py STYLES); None: the teacher draws one
    focus: FocusHint | None = None  # a focused request (``--focus failures``): the failure it answers

    def hashed(self) -> dict[str, Any]:
        """The spec as its request hash sees it: a spec without focus hashes as it did before focus existed."""
        return self.model_dump(exclude={"focus"} if self.focus is None else None)


class TeacherRequest(BaseModel):
    """A canonical teacher request. Its hash is the cache key in ``teacher_calls``."""

    model_config = ConfigDict(frozen=True)
    domain: str
    teacher: str
    model: str
    spec: RequestSpec
    messages: list[dict[str, str]] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)

    @cached_property
    def request_hash(self) -> str:
        # The domain is not part of the key: identical requests share one cached response. The key covers the
        # model, messages and every sampling parameter (seed and response_format schema included).
        return content_hash(self.teacher, self.model, self.spec.hashed(), self.messages, self.params, n=24)


class TeacherCall(BaseModel):
    """One teacher request's outcome, stored raw *before* any parsing.

    ``not_sent`` means the budget cap stopped the request before it was sent: it is never stored in
    ``teacher_calls`` (nothing was asked), and the generation stage records it as unsent.
    """

    request_hash: str
    status: Literal["ok", "failed", "not_sent"]
    raw_response: str | None = None
    attempts: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    error: str | None = None


class TeacherOutput(BaseModel):
    """What every teacher answer holds: ``description``, the request as a person would type it. A kind's output
    model (``Kind.output_model``) subclasses it with its answer and whatever its checks need (e.g. example strings
    the answer must accept and reject); its JSON schema is what an OpenAI teacher is asked for."""

    model_config = ConfigDict(extra="ignore")
    description: str = Field(min_length=1)


class Example(BaseModel):
    """An accepted training example with its lineage (a row of ``examples``)."""

    example_id: str
    domain: str
    prompt: str
    completion: str
    description: str
    kind_json: str | None = None  # the kind's own values (``Kind.example_fields``), as JSON
    topic: str
    run_id: str
    teacher: str
    request_hash: str
    seed: int
    validator_version: str
    split: Literal["train", "val", "test"]
