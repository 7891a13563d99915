"""Rate limits and the spending cap for teacher calls.

``RateLimits`` wraps ``aiolimiter.AsyncLimiter`` for requests per minute and tokens per minute. The request
bucket holds at most four requests, so a limit of 600 RPM sends one request every 100 ms from the start instead
of a 600-request burst followed by silence: a server's sliding window sees the configured rate, never a spike.

``Budget`` is a hard cap on dollars and requests for a whole run, shared by every batch of its generation and
started from what earlier attempts at the run already spent (``store.teacher_spend``: a resumed or rerun
generation does not get the cap again). An attempt may be sent only once its worst-case cost (estimated prompt
tokens + ``max_tokens`` at the price table's rates) is reserved; when it answers, the reservation is replaced
by its real cost (by a local token count when the answer has no ``usage``). An attempt whose outcome is
unknown (a timeout, a connection dropped after sending) is charged its reservation, and a retry reserves
again. When a reservation would cross a cap the budget is exhausted and nothing more is sent, so spending
never passes the cap (as long as the server honours ``max_tokens``).
"""

from __future__ import annotations

import math
import threading

from aiolimiter import AsyncLimiter

from schemas.config import ModelPrice, TeacherConfig


def estimate_prompt_tokens(chars: int, *, conservative: bool = False) -> int:
    """Tokens for ``chars`` characters of prompt: ~4 chars/token for English and JSON, 3 when it must not undercount."""
    return max(1, math.ceil(chars / (3 if conservative else 4)))


def cost_usd(prompt_tokens: int, completion_tokens: int, price: ModelPrice, factor: float = 1.0) -> float:
    """Dollars for one call at the table's per-1k rates (``factor`` < 1 for batch discounts)."""
    return (prompt_tokens * price.input_per_1k + completion_tokens * price.output_per_1k) / 1000 * factor


class RateLimits:
    """RPM and TPM limiters for one event loop (create one per ``asyncio.run``)."""

    def __init__(self, rpm: int | None, tpm: int | None) -> None:
        # Requests: evenly spaced at 60/rpm seconds, with a bucket of at most 4 requests (one for rpm < 300) so
        # that a late wake-up on a busy CPU can catch up instead of losing rate; never a larger burst.
        if rpm:
            bucket = max(1.0, min(4.0, rpm / 300))
            self.rpm: AsyncLimiter | None = AsyncLimiter(bucket, time_period=bucket * 60 / rpm)
        else:
            self.rpm = None
        # Tokens: a bucket of six seconds' worth, so that one request's prompt + max_tokens always fits.
        self._tpm_capacity = tpm / 10 if tpm else 0.0
        self.tpm = AsyncLimiter(self._tpm_capacity, time_period=6.0) if tpm else None

    @classmethod
    def from_config(cls, cfg: TeacherConfig) -> RateLimits:
        return cls(cfg.rpm, cfg.tpm)

    async def acquire(self, tokens: int) -> None:
        """Wait until one more request of about ``tokens`` tokens (prompt + max_tokens) fits both limits."""
        if self.rpm is not None:
            await self.rpm.acquire()
        if self.tpm is not None:
            await self.tpm.acquire(min(float(tokens), self._tpm_capacity))


class Budget:
    """A hard cap on dollars and requests, shared by all batches (thread-safe; cheap enough for the hot path)."""

    def __init__(self, max_cost_usd: float | None = None, max_requests: int | None = None, *,
                 spent_usd: float = 0.0, issued: int = 0) -> None:
        self.max_cost_usd = max_cost_usd
        self.max_requests = max_requests
        self.spent_usd = spent_usd  # settled cost of attempts (answered, or unknown outcome at their worst case)
        self.issued = issued        # requests sent (first attempts; retries are the same request)
        self._reserved = 0.0
        self.exhausted: str | None = None  # "max_cost_usd" | "max_requests" once a cap stopped sending
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: TeacherConfig, *, spent_usd: float = 0.0, issued: int = 0) -> Budget:
        """The run's caps, less what it already spent on ``issued`` requests (resumed runs, reruns)."""
        return cls(cfg.max_cost_usd, cfg.max_requests, spent_usd=spent_usd, issued=issued)

    @property
    def limited(self) -> bool:
        return self.max_cost_usd is not None or self.max_requests is not None

    def try_reserve(self, worst_usd: float, *, retry: bool = False) -> bool:
        """Reserve one attempt's worst-case cost; False (and exhausted from then on) when it would cross a cap.

        ``retry``: another attempt of a request already sent (it counts against dollars, not requests)."""
        with self._lock:
            if self.exhausted:
                return False
            if not retry and self.max_requests is not None and self.issued + 1 > self.max_requests:
                self.exhausted = "max_requests"
                return False
            if self.max_cost_usd is not None and self.spent_usd + self._reserved + worst_usd > self.max_cost_usd:
                self.exhausted = "max_cost_usd"
                return False
            self.issued += 0 if retry else 1
            self._reserved += worst_usd
            return True

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        """Replace a reservation by what the attempt cost: its real cost, zero when the server answered that it
        did nothing (an HTTP error), the whole reservation when nobody knows (timeout, dropped connection)."""
        with self._lock:
            self._reserved = max(0.0, self._reserved - reserved_usd)
            self.spent_usd += actual_usd

    def snapshot(self) -> dict:
        return {"spent_usd": round(self.spent_usd, 6), "issued": self.issued, "max_cost_usd": self.max_cost_usd,
                "max_requests": self.max_requests, "exhausted": self.exhausted}
