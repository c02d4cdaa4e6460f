"""Simulator of AWS Bedrock's Converse API (``bedrock-runtime``), for tests.

Speaks ``POST /model/{modelId}/converse`` (JSON) and ``/converse-stream`` (AWS binary event
stream), verifies SigV4 signatures exactly as AWS computes them (with botocore's signer, for
the configured key pair) or a Bedrock API key sent as a Bearer token, and validates requests
as Converse does (alternating roles, tool results matching tool uses, a toolConfig whenever
tool blocks appear). Its tests drive boto3's own client at it, so botocore's parser, built
from the service model, checks every response and event.

Control API under ``/__sim``: ``script`` (the conformance contract), ``requests``, ``faults``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import msgspec
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conformance.contract import Script
from tests.simulators.openai_sim import Fault, tokenize
from tests.simulators.threaded import SimulatorThread

ACCESS_KEY = "AKIASIMULATOR0000001"
SECRET_KEY = "sim-secret-key-0000000000000000000000000"
API_KEY = "bedrock-api-key-sim"
DEFAULT_REPLY = "Hello from the Bedrock simulator."
JSON = dict[str, Any]

_ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "content_filtered",
}


class _Invalid(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# --- event-stream encoding (botocore only decodes) ----------------------------------------


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    # type 7: string, with a 2-byte length
    return (
        bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value
    )


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude, prelude CRC, headers, payload, message CRC."""
    encoded_headers = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(encoded_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded_headers))
    head = prelude + struct.pack(">I", zlib.crc32(prelude))
    body = head + encoded_headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def encode_event(event_type: str, payload: JSON) -> bytes:
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, json.dumps(payload).encode())


def encode_exception(exception_type: str, message: str) -> bytes:
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, json.dumps({"message": message}).encode())


# --- request checks -----------------------------------------------------------------------


def verify_sigv4(request: web.Request, body: bytes, secrets: dict[str, str]) -> str | None:
    """None if the request is signed correctly for one of ``secrets``; else why not."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "Missing Authentication Token"
    fields = dict(
        part.strip().split("=", 1) for part in auth.removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    access_key, _date, region, service, _term = fields["Credential"].split("/")
    secret = secrets.get(access_key)
    if secret is None:
        return "The security token included in the request is invalid."
    if service != "bedrock":
        return f"Credential should be scoped to correct service: 'bedrock', not '{service}'."
    signed = fields["SignedHeaders"].split(";")
    # Rebuilt from the signed headers only, so botocore's canonicaliser sees what was signed.
    headers = {name: request.headers[name] for name in signed if name in request.headers}
    # AWS decodes the path it receives and encodes it again: a client may send "%3A" or ":".
    path = quote(unquote(request.raw_path.split("?")[0]), safe="/~")
    url = f"http://{request.headers['Host']}{path}"
    rebuilt = AWSRequest(method=request.method, url=url, data=body, headers=headers)
    rebuilt.context["timestamp"] = request.headers.get("X-Amz-Date", "")
    signer = SigV4Auth(
        Credentials(access_key, secret, request.headers.get("X-Amz-Security-Token")),
        "bedrock",
        region,
    )
    canonical = signer.canonical_request(rebuilt)
    expected = signer.signature(signer.string_to_sign(rebuilt, canonical), rebuilt)
    if expected != fields["Signature"]:
        return (
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return None


def _validate(body: Any) -> None:
    if not isinstance(body, dict):
        raise _Invalid("Malformed input request, please reformat your input and try again.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Invalid("A conversation must start with a user message. Try again.")
    has_tool_blocks = False
    last_uses: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise _Invalid(f"messages.{i}.role: must be user or assistant")
        if i == 0 and role != "user":
            raise _Invalid("A conversation must start with a user message. Try again.")
        if i > 0 and messages[i - 1].get("role") == role:
            raise _Invalid(
                "A conversation must alternate between user and assistant roles. Make sure the "
                "conversation alternates between user and assistant roles and try again."
            )
        content = message.get("content")
        if not isinstance(content, list) or not content:
            raise _Invalid(f"messages.{i}.content: must not be empty")
        uses: set[str] = set()
        for block in content:
            if "toolUse" in block:
                has_tool_blocks = True
                uses.add(block["toolUse"]["toolUseId"])
                if not isinstance(block["toolUse"].get("input"), dict):
                    raise _Invalid("toolUse.input must be a JSON object")
            if "toolResult" in block:
                has_tool_blocks = True
                if block["toolResult"]["toolUseId"] not in last_uses:
                    raise _Invalid(
                        "The toolUseId in a toolResult block must match a toolUse block of "
                        "the previous turn."
                    )
            if "image" in block:
                image = block["image"]
                if image.get("format") not in ("png", "jpeg", "gif", "webp"):
                    raise _Invalid("image.format: must be png, jpeg, gif or webp")
                try:
                    base64.b64decode(image["source"]["bytes"], validate=True)
                except (binascii.Error, KeyError, TypeError):
                    raise _Invalid("image.source.bytes: invalid base64") from None
        last_uses = uses if role == "assistant" else set()
    if has_tool_blocks and "toolConfig" not in body:
        raise _Invalid(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )
    inference = body.get("inferenceConfig") or {}
    max_tokens = inference.get("maxTokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise _Invalid("inferenceConfig.maxTokens: must be at least 1")


# --- replies ------------------------------------------------------------------------------


@dataclass
class _Reply:
    reasoning: str | None
    text: str | None
    tool_calls: list[tuple[str, str, JSON]]
    stop_reason: str
    usage: JSON


def _usage(prompt: int, completion: int, cached: int) -> JSON:
    # Converse's inputTokens leave out what was read from the cache.
    return {
        "inputTokens": prompt - cached,
        "outputTokens": completion,
        "totalTokens": prompt + completion,
        "cacheReadInputTokens": cached,
        "cacheWriteInputTokens": 0,
    }


def _reply(body: JSON, script: Script | None) -> _Reply:
    if script is not None:
        return _Reply(
            reasoning=script.reasoning,
            text=script.text,
            tool_calls=[(c.id, c.name, c.arguments) for c in script.tool_calls],
            stop_reason=_STOP_REASONS[script.finish_reason],
            usage=_usage(
                script.usage.prompt_tokens,
                script.usage.completion_tokens,
                script.usage.cached_tokens,
            ),
        )
    prompt = sum(len(json.dumps(m)) // 4 for m in body["messages"]) + 1
    choice = (body.get("toolConfig") or {}).get("toolChoice") or {}
    tools = (body.get("toolConfig") or {}).get("tools") or []
    if tools and ("any" in choice or "tool" in choice):
        name = choice["tool"]["name"] if "tool" in choice else tools[0]["toolSpec"]["name"]
        return _Reply(None, None, [("tooluse_sim0001", name, {})], "tool_use", _usage(prompt, 5, 0))
    words = tokenize(DEFAULT_REPLY)
    limit = (body.get("inferenceConfig") or {}).get("maxTokens")
    if isinstance(limit, int) and limit < len(words):
        return _Reply(None, "".join(words[:limit]), [], "max_tokens", _usage(prompt, limit, 0))
    return _Reply(None, DEFAULT_REPLY, [], "end_turn", _usage(prompt, len(words), 0))


def _content(reply: _Reply) -> list[JSON]:
    blocks: list[JSON] = []
    if reply.reasoning:
        text = {"text": reply.reasoning, "signature": "sig-sim-0001"}
        blocks.append({"reasoningContent": {"reasoningText": text}})
    if reply.text:
        blocks.append({"text": reply.text})
    for call_id, name, arguments in reply.tool_calls:
        blocks.append({"toolUse": {"toolUseId": call_id, "name": name, "input": arguments}})
    return blocks


def _response_body(reply: _Reply) -> JSON:
    return {
        "output": {"message": {"role": "assistant", "content": _content(reply)}},
        "stopReason": reply.stop_reason,
        "usage": reply.usage,
        "metrics": {"latencyMs": 42},
    }


def _delta(index: int, delta: JSON) -> bytes:
    return encode_event("contentBlockDelta", {"delta": delta, "contentBlockIndex": index})


def _stream_events(reply: _Reply) -> list[bytes]:
    events = [encode_event("messageStart", {"role": "assistant"})]
    index = 0
    if reply.reasoning:
        for piece in tokenize(reply.reasoning):
            events.append(_delta(index, {"reasoningContent": {"text": piece}}))
        events.append(_delta(index, {"reasoningContent": {"signature": "sig-sim-0001"}}))
        events.append(encode_event("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    if reply.text:
        for piece in tokenize(reply.text):
            events.append(_delta(index, {"text": piece}))
        events.append(encode_event("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    for call_id, name, arguments in reply.tool_calls:
        start = {"toolUse": {"toolUseId": call_id, "name": name}}
        events.append(
            encode_event("contentBlockStart", {"start": start, "contentBlockIndex": index})
        )
        encoded = json.dumps(arguments)
        middle = max(1, len(encoded) // 2)
        for fragment in (encoded[:middle], encoded[middle:]):
            events.append(_delta(index, {"toolUse": {"input": fragment}}))
        events.append(encode_event("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    events.append(encode_event("messageStop", {"stopReason": reply.stop_reason}))
    events.append(encode_event("metadata", {"usage": reply.usage, "metrics": {"latencyMs": 42}}))
    return events


# --- the server ---------------------------------------------------------------------------


def _error(status: int, message: str, kind: str | None = None) -> web.Response:
    kind = kind or _ERROR_TYPES.get(status, "InternalServerException")
    return web.Response(
        status=status,
        body=json.dumps({"message": message}).encode(),
        content_type="application/json",
        headers={
            "x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"
        },
    )


class BedrockSimulator:
    def __init__(
        self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, api_key: str = API_KEY
    ) -> None:
        self.secrets = {access_key: secret_key}
        self.api_key = api_key
        self.script: Script | None = None
        self.recorded: collections.deque[JSON] = collections.deque(maxlen=1000)
        self.faults: collections.deque[Fault] = collections.deque()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=32 * 1024**2)
        app.add_routes(
            [
                web.post("/model/{model_id}/converse", self._converse),
                web.post("/model/{model_id}/converse-stream", self._converse_stream),
                web.post("/__sim/script", self._post_script),
                web.delete("/__sim/script", self._delete_script),
                web.get("/__sim/requests", self._get_requests),
                web.post("/__sim/faults", self._post_faults),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _check(self, request: web.Request) -> tuple[JSON | None, web.StreamResponse | None]:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.recorded.append(
            {"path": request.raw_path, "model": request.match_info["model_id"], "body": body}
        )
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            if auth.removeprefix("Bearer ") != self.api_key:
                return None, _error(403, "Invalid API Key format", "AccessDeniedException")
        else:
            problem = verify_sigv4(request, raw, self.secrets)
            if problem is not None:
                kind = (
                    "InvalidSignatureException"
                    if "signature" in problem
                    else "UnrecognizedClientException"
                )
                return None, _error(403, problem, kind)
        try:
            _validate(body)
        except _Invalid as exc:
            return None, _error(exc.status, exc.message)
        fault = self.faults.popleft() if self.faults else None
        if fault is not None:
            if fault.kind == "latency":
                await asyncio.sleep(fault.ms / 1000)
            elif fault.kind == "status":
                response = _error(fault.status, "Simulated failure")
                if fault.retry_after is not None:
                    response.headers["Retry-After"] = str(int(fault.retry_after))
                return None, response
            elif fault.kind == "reset":
                assert request.transport is not None
                request.transport.abort()
                return None, web.Response(status=500)
            elif fault.kind == "disconnect_mid_stream":
                request["cut_after"] = fault.after_chunks
        return body, None

    async def _converse(self, request: web.Request) -> web.StreamResponse:
        body, failed = await self._check(request)
        if failed is not None:
            return failed
        assert body is not None
        return web.json_response(_response_body(_reply(body, self.script)))

    async def _converse_stream(self, request: web.Request) -> web.StreamResponse:
        body, failed = await self._check(request)
        if failed is not None:
            return failed
        assert body is not None
        response = web.StreamResponse(
            headers={"Content-Type": "application/vnd.amazon.eventstream"}
        )
        await response.prepare(request)
        cut_after = request.get("cut_after")
        for sent, event in enumerate(_stream_events(_reply(body, self.script))):
            if cut_after is not None and sent >= cut_after:
                assert request.transport is not None
                request.transport.abort()
                return response
            await response.write(event)
        await response.write_eof()
        return response

    async def _post_script(self, request: web.Request) -> web.Response:
        self.script = msgspec.json.decode(await request.read(), type=Script)
        return web.json_response({"ok": True})

    async def _delete_script(self, request: web.Request) -> web.Response:
        self.script = None
        return web.json_response({"ok": True})

    async def _get_requests(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.recorded))

    async def _post_faults(self, request: web.Request) -> web.Response:
        self.faults.extend(msgspec.json.decode(await request.read(), type=list[Fault]))
        return web.json_response({"ok": True})


def model_id_of(recorded: JSON) -> str:
    return urlsplit(recorded["path"]).path.split("/")[2]


class ThreadedBedrockSimulator(SimulatorThread[BedrockSimulator]):
    """The simulator's controls, callable from the tests' thread, for end-to-end tests."""

    def __init__(self) -> None:
        simulator = BedrockSimulator()
        super().__init__(simulator, simulator.start(), "bedrock-sim")

    @property
    def base_url(self) -> str:
        return self.simulator.base_url

    def add_fault(self, fault: Fault) -> None:
        self._loop.call_soon_threadsafe(self.simulator.faults.append, fault)

    def recorded(self) -> list[JSON]:
        return self._call(lambda: list(self.simulator.recorded))
