"""The chat completion service: plan, meter, execute, and shape what the client receives.

Handlers stay thin: they authenticate, decode, and hand a validated request to this module,
which knows nothing of HTTP beyond the SSE framing of a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from msgspec import UNSET

from switchyard import tokens
from switchyard.accounting.cost import price_usage
from switchyard.accounting.ledger import Reservation
from switchyard.accounting.meter import CallContext, Meter, Outcome
from switchyard.accounting.usage import counted_usage, normalise_usage
from switchyard.catalog import Catalog, ModelSpec
from switchyard.errors import (
    InvalidRequest,
    ShuttingDown,
    StreamTooLong,
    SwitchyardError,
    UpstreamError,
)
from switchyard.execute import Execution, Executor
from switchyard.providers.base import ChunkStream, Provider
from switchyard.routing.health import EndpointHealth, HealthTracker
from switchyard.routing.metadata import routing_metadata
from switchyard.routing.plan import Candidate, Plan, plan, requested_models, resolve_model
from switchyard.routing.sticky import StickySessions, conversation_key
from switchyard.shutdown import Drain, within_grace
from switchyard.sse import DONE_FRAME, KEEPALIVE_FRAME, frame
from switchyard.wire.chat import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    Delta,
    StreamChoice,
    StreamError,
    Usage,
)
from switchyard.wire.codec import encode
from switchyard.wire.validate import validate_chat

log = logging.getLogger("switchyard.completions")

# Bodies above this size plan in a worker thread: exact token counts of long prompts take
# milliseconds of pure-Python work that must not stall the event loop.
_PLAN_OFF_LOOP_BYTES = 256 * 1024


def new_generation_id() -> str:
    return f"gen-{int(time.time())}-{secrets.token_hex(10)}"


@dataclass(slots=True)
class Prepared:
    plan: Plan
    # model id -> prompt tokens for priced models: exact, or estimated for native tokenizers
    prompt_tokens: dict[str, int]
    images: int
    conversation: str  # sticky-routing key
    body_size: int


class ChatService:
    def __init__(
        self,
        catalog: Catalog,
        providers: Mapping[str, Provider],
        meter: Meter,
        keepalive_interval: float,
        health: HealthTracker | None = None,
        *,
        max_messages: int | None = None,
        max_stream_seconds: float | None = None,
        drain: Drain | None = None,
    ) -> None:
        self._catalog = catalog
        self._max_messages = max_messages
        self._max_stream_seconds = max_stream_seconds
        self._drain = drain
        self._available = frozenset(providers)
        self.health = health or HealthTracker()
        self._executor = Executor(providers, self.health)
        self._meter = meter
        self._keepalive = keepalive_interval
        self._sticky = StickySessions()
        self._rng = random.Random()

    async def prepare(
        self, request: ChatRequest, body_size: int, session_id: str | None = None
    ) -> Prepared:
        if self._max_messages is not None and len(request.messages) > self._max_messages:
            raise InvalidRequest(
                f"`messages` has {len(request.messages)} messages; the limit is"
                f" {self._max_messages}",
                field="messages",
            )
        validate_chat(request)
        if body_size > _PLAN_OFF_LOOP_BYTES:
            return await asyncio.to_thread(self._prepare, request, body_size, session_id)
        return self._prepare(request, body_size, session_id)

    def _prepare(self, request: ChatRequest, body_size: int, session_id: str | None) -> Prepared:
        counted: dict[str, int] = {}

        def count(model: ModelSpec) -> int | None:
            if model.encoding == "native":
                return None
            if model.id not in counted:
                counted[model.id] = tokens.count_prompt(request, model.encoding)
            return counted[model.id]

        now = time.monotonic()
        conversation = conversation_key(request, session_id)
        chosen = plan(
            request,
            self._catalog,
            self._available,
            count,
            body_size,
            self._health_snapshot(request, now),
            self._rng,
            self._sticky.get(conversation, now),
        )
        return Prepared(
            chosen, counted, tokens.image_count(request.messages), conversation, body_size
        )

    def _health_snapshot(self, request: ChatRequest, now: float) -> dict[str, EndpointHealth]:
        snapshot: dict[str, EndpointHealth] = {}
        for model_id, _ in requested_models(request):
            model, _variant = resolve_model(self._catalog, model_id)
            if model is not None:
                for endpoint in self._catalog.endpoints_for(model.id):
                    snapshot[endpoint.key] = self.health.snapshot(endpoint.key, now)
        return snapshot

    def _served(self, prep: Prepared, served: Candidate) -> None:
        """Keep the conversation on an endpoint that caches prompts."""
        if served.endpoint.supports_implicit_caching:
            self._sticky.remember(prep.conversation, served.endpoint.key, time.monotonic())

    async def _reserve(self, ctx: CallContext, request: ChatRequest, prep: Prepared) -> Reservation:
        if await self._meter.ledger.available(ctx.key) is not None:
            # A limit applies: reserving needs the exact prompt size of every priced model.
            # (Unlimited keys skip the tokenizer; the real cost is settled all the same.)
            await self._count_priced(request, prep)
        return await self._meter.reserve(
            ctx,
            prep.plan.candidates,
            prep.prompt_tokens,
            request.output_limit(),
            prep.images,
            models=[model_id for model_id, _field in requested_models(request)],
        )

    async def _count_priced(self, request: ChatRequest, prep: Prepared) -> None:
        """Prompt sizes for every priced candidate: exact where we have the tokenizer, a
        generous estimate where the provider's tokenizer is its own (see tokens.py)."""
        todo = {
            c.model.id: c.model.encoding
            for c in prep.plan.candidates
            if not c.endpoint.pricing.is_free() and c.model.id not in prep.prompt_tokens
        }
        if not todo:
            return

        def count_all() -> dict[str, int]:
            estimate: int | None = None
            counted: dict[str, int] = {}
            for model_id, enc in todo.items():
                if enc != "native":
                    counted[model_id] = tokens.count_prompt(request, enc)
                    continue
                if estimate is None:
                    estimate = tokens.estimate_native_prompt(request)
                counted[model_id] = estimate
            return counted

        if prep.body_size > _PLAN_OFF_LOOP_BYTES:
            prep.prompt_tokens.update(await asyncio.to_thread(count_all))
        else:
            prep.prompt_tokens.update(count_all())

    async def complete(self, request: ChatRequest, prep: Prepared, ctx: CallContext) -> ChatResult:
        reservation = await self._reserve(ctx, request, prep)
        execution = Execution()
        try:
            async with within_grace(self._drain):
                result = await self._executor.complete(request, prep.plan.candidates, execution)
        except BaseException:
            self._meter.settle(ctx, reservation, execution, Outcome(None, None, "error", None))
            raise
        ctx.first_token_at = time.perf_counter()
        served = execution.served_by
        assert served is not None
        self._served(prep, served)
        result.id = ctx.generation_id
        result.model = served.model.id
        result.provider = self._catalog.providers[served.endpoint.provider].name
        usage = result.usage
        if not isinstance(usage, Usage):
            text = "".join(c.message.content or "" for c in result.choices)
            usage = counted_usage(request, served.model, text)
        result.usage = price_usage(
            normalise_usage(usage), served.endpoint.pricing, images=prep.images
        )
        elapsed = ctx.first_token_at - ctx.started
        self._executor.record_timing(
            served.endpoint,
            latency=elapsed,
            output_tokens=result.usage.completion_tokens,
            duration=elapsed,
        )
        if ctx.want_metadata:
            result.openrouter_metadata = routing_metadata(request, prep.plan, execution)
        first = result.choices[0] if result.choices else None
        self._meter.settle(
            ctx,
            reservation,
            execution,
            Outcome(
                served,
                result.usage,
                first.finish_reason if first else None,
                first.native_finish_reason if first else None,
                images=prep.images,
            ),
        )
        return result

    async def open_stream(
        self, request: ChatRequest, prep: Prepared, ctx: CallContext
    ) -> StreamSession:
        reservation = await self._reserve(ctx, request, prep)
        execution = Execution()
        try:
            upstream = await self._executor.open_stream(request, prep.plan.candidates, execution)
        except BaseException:
            self._meter.settle(ctx, reservation, execution, Outcome(None, None, "error", None))
            raise
        served = execution.served_by
        assert served is not None
        self._served(prep, served)
        return StreamSession(
            request=request,
            upstream=upstream,
            served=served,
            provider_name=self._catalog.providers[served.endpoint.provider].name,
            ctx=ctx,
            execution=execution,
            keepalive=self._keepalive,
            meter=self._meter,
            reservation=reservation,
            images=prep.images,
            executor=self._executor,
            metadata=routing_metadata(request, prep.plan, execution) if ctx.want_metadata else None,
            max_seconds=self._max_stream_seconds,
            drain=self._drain,
        )


@dataclass
class StreamSession:
    """One established stream: turns upstream chunks into the frames the client reads."""

    request: ChatRequest
    upstream: ChunkStream
    served: Candidate
    provider_name: str
    ctx: CallContext
    execution: Execution
    keepalive: float
    meter: Meter
    reservation: Reservation
    images: int
    executor: Executor
    metadata: dict[str, Any] | None = None
    # The stream is cut (error chunk, settled) after this long, or when a shutdown's grace
    # period ends, whichever comes first.
    max_seconds: float | None = None
    drain: Drain | None = None
    created: int = field(default_factory=lambda: int(time.time()))
    usage: Usage | None = None
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    _text: list[str] = field(default_factory=list)
    _closed: bool = False
    _settled: bool = False
    _final: Usage | None = None
    # The cut (max_seconds, or the end of a shutdown's grace) is one timer per stream, not a
    # timeout scope per chunk (that cost ~13 % of a streamed request's CPU): when it fires
    # while a chunk is awaited, it cancels that wait; otherwise the next wait is refused.
    _deadline: asyncio.TimerHandle | None = None
    _waiter: asyncio.Task[Any] | None = None  # the task awaiting an upstream chunk, if any
    _cut_due: bool = False

    @property
    def generation_id(self) -> str:
        return self.ctx.generation_id

    async def frames(self) -> AsyncIterator[bytes]:
        """The stream as Chat Completions SSE frames."""
        # aclosing: if the client goes, the inner generator's cleanup runs now, not at GC.
        async with contextlib.aclosing(self.events()) as events:
            async for chunk in events:
                yield KEEPALIVE_FRAME if chunk is None else frame(encode(chunk))
        if self.finish_reason != "error":
            yield DONE_FRAME

    async def events(self) -> AsyncGenerator[ChatChunk | None, None]:
        """The stream as canonical chunks, for any client-facing protocol to render.

        ``None`` is a keep-alive tick while waiting for the first chunk. The last item is
        our one usage chunk (no choices), or, if the upstream broke mid-way, an error chunk
        (``finish_reason`` "error", ``error`` set). Usage is settled before either is
        yielded, so a client that sees the end of the stream sees accounted usage.
        """
        chunks = self.upstream.__aiter__()
        try:
            async for out in self._relay(chunks):
                yield out
        except (StreamTooLong, ShuttingDown) as exc:
            # Our decision, not the provider's fault: pay for what was generated, as when
            # a client leaves, and say why in-band.
            log.warning("stream %s cut: %s", self.generation_id, exc.message)
            await self.close()
            self._settle(cancelled=True)
            self.finish_reason = "error"
            yield self._error_chunk(exc)
            return
        except UpstreamError as exc:
            # After the first byte there is no status code left to set: say it in-band.
            log.warning("stream %s failed mid-way: %s", self.generation_id, exc.message)
            self.executor.record_broken_stream(self.served.endpoint)
            self.finish_reason = "error"
            self._settle(cancelled=False)
            yield self._error_chunk(exc)
            return
        finally:
            await self.close()
        usage_chunk = self._usage_chunk()
        self._record_timing(usage_chunk.usage)
        self._settle(cancelled=False)  # before the client can see the stream complete
        yield usage_chunk

    async def _relay(self, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk | None]:
        loop = asyncio.get_running_loop()
        cut_at = loop.time() + self.max_seconds if self.max_seconds is not None else None
        drain = self.drain
        if drain is not None:
            drain.watch(self._draining)
        try:
            # Before the first chunk: keep the connection warm with SSE comments.
            pending = asyncio.ensure_future(chunks.__anext__())
            try:
                while True:
                    timeout = self.keepalive
                    limit = self._cut_at(cut_at)
                    if limit is not None:
                        timeout = min(timeout, max(limit - loop.time(), 0.0))
                    done, _pending = await asyncio.wait({pending}, timeout=timeout)
                    if done:
                        break
                    if limit is not None and loop.time() >= limit:
                        raise self._cut_reason()
                    yield None
            except BaseException:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
                raise
            try:
                chunk: ChatChunk | None = pending.result()
            except StopAsyncIteration:
                chunk = None
            self.ctx.first_token_at = time.perf_counter()
            while chunk is not None:
                out = self._rewrite(chunk)
                if out is not None:
                    yield out
                chunk = await self._next(chunks, cut_at)
        finally:
            self._disarm()
            if drain is not None:
                drain.unwatch(self._draining)

    def _cut_at(self, cut_at: float | None) -> float | None:
        """The loop time this stream must end by: its own limit or the shutdown deadline."""
        deadline = self.drain.deadline if self.drain is not None else None
        if deadline is None:
            return cut_at
        return deadline if cut_at is None else min(cut_at, deadline)

    def _cut_reason(self) -> SwitchyardError:
        if self.drain is not None and self.drain.draining:
            return ShuttingDown(
                "The server is shutting down; the stream was ended. Retry the request.",
                retry_after=1,
            )
        return StreamTooLong(
            f"The stream ran longer than the server's limit of {self.max_seconds:g} seconds"
        )

    async def _next(
        self, chunks: AsyncIterator[ChatChunk], cut_at: float | None
    ) -> ChatChunk | None:
        """The next upstream chunk (None at the end), or the cut once the deadline passes."""
        limit = self._cut_at(cut_at)
        if limit is None and self.drain is None:
            try:
                return await chunks.__anext__()
            except StopAsyncIteration:
                return None
        loop = asyncio.get_running_loop()
        if self._cut_due or (limit is not None and limit <= loop.time()):
            raise self._cut_reason()
        if limit is not None and (self._deadline is None or limit < self._deadline.when()):
            self._arm(loop, limit)
        waiter = self._waiter = asyncio.current_task()
        try:
            return await chunks.__anext__()
        except StopAsyncIteration:
            return None
        except asyncio.CancelledError:
            # Ours (the cut) unless someone else cancelled too: then theirs wins.
            if self._cut_due and waiter is not None and waiter.uncancel() == 0:
                raise self._cut_reason() from None
            raise
        finally:
            self._waiter = None

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._disarm()
        self._deadline = loop.call_at(when, self._cut_now)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _cut_now(self) -> None:
        self._deadline = None
        self._cut_due = True
        if self._waiter is not None:
            self._waiter.cancel()

    def _draining(self, deadline: float) -> None:
        """Shutdown began: the stream must now end by ``deadline``."""
        if self._deadline is None or deadline < self._deadline.when():
            self._arm(asyncio.get_running_loop(), deadline)

    def _rewrite(self, chunk: ChatChunk) -> ChatChunk | None:
        if chunk.usage is not UNSET:
            if chunk.usage is not None:
                self.usage = chunk.usage
            chunk.usage = UNSET
            if not chunk.choices:
                return None  # we send one usage chunk of our own, at the end
        chunk.id = self.generation_id
        chunk.model = self.served.model.id
        chunk.provider = self.provider_name
        chunk.created = self.created
        for choice in chunk.choices:
            content = choice.delta.content
            if isinstance(content, str):
                self._text.append(content)
            tool_calls = choice.delta.tool_calls
            if tool_calls:
                for call in tool_calls:
                    fn = call.function
                    if fn is not UNSET and isinstance(fn.arguments, str):
                        self._text.append(fn.arguments)
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
                self.native_finish_reason = choice.native_finish_reason
        return chunk

    def final_usage(self) -> Usage:
        """Priced once: the usage chunk and the settlement read the same figures."""
        if self._final is None:
            usage = self.usage
            if usage is None:
                usage = counted_usage(self.request, self.served.model, "".join(self._text))
            self._final = price_usage(
                normalise_usage(usage), self.served.endpoint.pricing, images=self.images
            )
        return self._final

    def _record_timing(self, usage: object) -> None:
        first = self.ctx.first_token_at
        if first is None or not isinstance(usage, Usage):
            return
        self.executor.record_timing(
            self.served.endpoint,
            latency=first - self.ctx.started,
            output_tokens=usage.completion_tokens,
            duration=time.perf_counter() - first,
        )

    def _settle(self, *, cancelled: bool) -> None:
        if self._settled:
            return
        self._settled = True
        self.meter.settle(
            self.ctx,
            self.reservation,
            self.execution,
            Outcome(
                self.served,
                self.final_usage(),
                self.finish_reason,
                self.native_finish_reason,
                cancelled=cancelled,
                images=self.images,
            ),
        )

    def _usage_chunk(self) -> ChatChunk:
        return ChatChunk(
            id=self.generation_id,
            created=self.created,
            model=self.served.model.id,
            provider=self.provider_name,
            choices=[],
            usage=self.final_usage(),
            openrouter_metadata=self.metadata if self.metadata is not None else UNSET,
        )

    def _error_chunk(self, exc: SwitchyardError) -> ChatChunk:
        return ChatChunk(
            id=self.generation_id,
            created=self.created,
            model=self.served.model.id,
            provider=self.provider_name,
            choices=[
                StreamChoice(
                    index=0,
                    delta=Delta(content=""),
                    finish_reason="error",
                    native_finish_reason=None,
                )
            ],
            error=StreamError(code=exc.status, message=exc.message, metadata=exc.metadata or {}),
        )

    async def cancel(self) -> None:
        """The client went away: stop the upstream work and pay for what was generated."""
        await self.close()
        self._settle(cancelled=True)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self.upstream.aclose()
