"""JSON codecs on the gateway's hot path: stdlib json vs msgspec (and orjson if installed).

Three operations a gateway repeats per request or per streamed chunk, on payloads shaped
like the OpenAI simulator's: decode a chat request body; decode an upstream completion and
encode the client's reply; decode an upstream stream chunk and encode the relayed one.
msgspec is measured both untyped (to dicts, like json) and typed (to msgspec Structs, as
Switchyard's wire layer decodes requests). A micro-benchmark in one process: it shows the
codec's own cost, not its share of a request (see gateway_overhead.py for that).

    .venv/bin/python bench/json_codecs.py

Writes bench/results/json_codecs.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

import _harness as h

REQUEST: dict[str, Any] = {
    "model": h.GATEWAY_MODEL,
    "messages": [
        {"role": "system", "content": "You are a helpful assistant. " * 8},
        {"role": "user", "content": "Summarise the plot of Hamlet in three sentences."},
        {"role": "assistant", "content": "Prince Hamlet seeks revenge for his father. " * 4},
        {"role": "user", "content": "Now in one sentence, please."},
    ],
    "temperature": 0.7,
    "max_tokens": 256,
    "stream": True,
}
USAGE: dict[str, Any] = {
    "prompt_tokens": 87,
    "completion_tokens": 20,
    "total_tokens": 107,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-9de4bb27235f24fd891f1f83",
    "object": "chat.completion",
    "created": 1795367695,
    "model": h.UPSTREAM_MODEL,
    "service_tier": "default",
    "system_fingerprint": "fp_5f2e1d0c9b",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello from the simulator. " * 4,
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": USAGE,
}
CHUNK: dict[str, Any] = {
    "id": "chatcmpl-9de4bb27235f24fd891f1f83",
    "object": "chat.completion.chunk",
    "created": 1795367695,
    "model": h.UPSTREAM_MODEL,
    "service_tier": "default",
    "system_fingerprint": "fp_5f2e1d0c9b",
    "choices": [
        {"index": 0, "delta": {"content": " simulator"}, "logprobs": None, "finish_reason": None}
    ],
    "obfuscation": "sim",
}


class Message(msgspec.Struct, omit_defaults=True):
    role: str
    content: str | None = None


class ChatRequest(msgspec.Struct, omit_defaults=True):
    model: str
    messages: list[Message]
    temperature: float | None = None
    max_tokens: int | None = None
    stream: bool = False


class Delta(msgspec.Struct, omit_defaults=True):
    role: str | None = None
    content: str | None = None


class ChunkChoice(msgspec.Struct):
    index: int
    delta: Delta
    logprobs: Any = None
    finish_reason: str | None = None


class Chunk(msgspec.Struct, omit_defaults=True):
    id: str
    object: str
    created: int
    model: str
    choices: list[ChunkChoice]
    system_fingerprint: str | None = None
    service_tier: str | None = None


class Choice(msgspec.Struct):
    index: int
    message: dict[str, Any]
    logprobs: Any = None
    finish_reason: str | None = None


class Completion(msgspec.Struct, omit_defaults=True):
    id: str
    object: str
    created: int
    model: str
    choices: list[Choice]
    usage: dict[str, Any] | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None


Op = Callable[[], object]


def relay(decode: Callable[[bytes], Any], encode: Callable[[Any], bytes], raw: bytes) -> Op:
    """Decode an upstream body, rename the model, encode it again."""

    def op() -> object:
        value = decode(raw)
        if isinstance(value, dict):
            value["model"] = h.GATEWAY_MODEL
        else:
            value.model = h.GATEWAY_MODEL
        return encode(value)

    return op


def codecs() -> dict[str, dict[str, Op]]:
    request = json.dumps(REQUEST).encode()
    completion = json.dumps(COMPLETION).encode()
    chunk = json.dumps(CHUNK).encode()

    def std_encode(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    request_decoder = msgspec.json.Decoder(ChatRequest)
    encoder = msgspec.json.Encoder()
    found: dict[str, dict[str, Op]] = {
        f"stdlib json (Python {sys.version.split()[0]})": {
            "decode request": lambda: json.loads(request),
            "relay completion": relay(json.loads, std_encode, completion),
            "relay stream chunk": relay(json.loads, std_encode, chunk),
        },
        f"msgspec {msgspec.__version__}, untyped": {
            "decode request": lambda: msgspec.json.decode(request),
            "relay completion": relay(msgspec.json.decode, encoder.encode, completion),
            "relay stream chunk": relay(msgspec.json.decode, encoder.encode, chunk),
        },
        f"msgspec {msgspec.__version__}, typed Structs": {
            "decode request": lambda: request_decoder.decode(request),
            "relay completion": relay(
                msgspec.json.Decoder(Completion).decode, encoder.encode, completion
            ),
            "relay stream chunk": relay(msgspec.json.Decoder(Chunk).decode, encoder.encode, chunk),
        },
    }
    try:
        orjson: Any = importlib.import_module("orjson")
    except ImportError:
        return found
    found[f"orjson {h.package_version('orjson')}"] = {
        "decode request": lambda: orjson.loads(request),
        "relay completion": relay(orjson.loads, orjson.dumps, completion),
        "relay stream chunk": relay(orjson.loads, orjson.dumps, chunk),
    }
    return found


def time_op(op: Op, repeat: int) -> float:
    """Best-of-`repeat` microseconds per call."""
    timer = timeit.Timer(op)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat, number)) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats (best is kept)")
    parser.add_argument("--output", type=Path, default=h.RESULTS / "json_codecs.md")
    args = parser.parse_args(argv)
    h.pin_self(h.SERVER_CPU)
    found = codecs()
    timings = {
        codec: {name: time_op(op, args.repeat) for name, op in ops.items()}
        for codec, ops in found.items()
    }
    baseline = next(iter(timings.values()))
    ops = list(baseline)
    rows = []
    for codec, times in timings.items():
        rows.append([codec] + [f"{times[op]:.2f} ({baseline[op] / times[op]:.1f}x)" for op in ops])
        print(codec, {op: round(t, 2) for op, t in times.items()})
    sizes = {
        "decode request": len(json.dumps(REQUEST)),
        "relay completion": len(json.dumps(COMPLETION)),
        "relay stream chunk": len(json.dumps(CHUNK)),
    }
    sections = [
        "# JSON codecs: stdlib json vs msgspec",
        "Generated by `bench/json_codecs.py`: microseconds per operation, best of "
        f"{args.repeat} timeit repeats, one process pinned to CPU {h.SERVER_CPU}; in brackets "
        "the speed-up over stdlib json (higher is better). *Relay* = decode an upstream body, "
        "change the model name, encode it again.",
        h.md_table(["codec", *(f"{op} ({sizes[op]} B), µs" for op in ops)], rows),
        "## Machine",
        h.kv_table(h.machine_info(("msgspec", "orjson"))),
    ]
    h.write_report(args.output, "\n\n".join(sections) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
