"""SSEParser: incremental parsing must not depend on where the byte stream is split."""

from __future__ import annotations

import itertools
import random

import pytest

from switchyard.sse import DONE, DONE_FRAME, KEEPALIVE_FRAME, SSEEvent, SSEParser, frame

# One stream with everything the parser must handle: CRLF and LF endings, comments, ids,
# retry fields, named events, multi-line data, multi-byte UTF-8 and a final [DONE].
STREAM = (
    b": OPENROUTER PROCESSING\r\n\r\n"
    b'data: {"a":1}\r\n\r\n'
    b"event: ping\n"
    b"id: 7\n"
    b"retry: 1000\n"
    b"data: first line\n"
    b": a comment between data lines\n"
    b"data: second line\n"
    b"\n"
    + "data: héllo 世界 🚀\r\n\r\n".encode()
    + b"data:no-space\n\n"
    + b"data:  two spaces\n\n"
    + b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent(b'{"a":1}'),
    SSEEvent(b"first line\nsecond line", "ping"),
    SSEEvent("héllo 世界 🚀".encode()),
    SSEEvent(b"no-space"),
    SSEEvent(b" two spaces"),
    SSEEvent(DONE),
]


def feed_all(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.flush())
    return events


def random_split(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), rng.randint(0, min(20, len(data) - 1))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def test_whole_stream_parses_to_expected_events() -> None:
    assert feed_all([STREAM]) == EXPECTED


def test_byte_by_byte_gives_same_events() -> None:
    assert feed_all([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@pytest.mark.parametrize("seed", range(50))
def test_random_splits_give_same_events(seed: int) -> None:
    rng = random.Random(seed)
    chunks = random_split(STREAM, rng)
    assert b"".join(chunks) == STREAM
    assert feed_all(chunks) == EXPECTED


def _generate_stream(rng: random.Random) -> tuple[bytes, list[SSEEvent]]:
    """A random well-formed stream and the events a correct parser must produce."""
    alphabet = 'abc xyz:{}"é世🚀[]'
    out: list[bytes] = []
    expected: list[SSEEvent] = []
    for _ in range(rng.randint(1, 8)):
        nl = rng.choice([b"\n", b"\r\n"])
        if rng.random() < 0.3:
            out.append(b": keep-alive" + nl)
        name = rng.choice([None, "message", "delta", "error"])
        if name is not None:
            out.append(b"event: " + name.encode() + nl)
        lines = [
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
            for _ in range(rng.randint(1, 3))
        ]
        for line in lines:
            out.append(b"data: " + line.encode() + nl)
        out.append(nl)
        expected.append(SSEEvent("\n".join(lines).encode(), name))
    return b"".join(out), expected


@pytest.mark.parametrize("seed", range(40))
def test_generated_streams_parse_the_same_under_any_split(seed: int) -> None:
    rng = random.Random(1000 + seed)
    stream, expected = _generate_stream(rng)
    assert feed_all([stream]) == expected
    assert feed_all([stream[i : i + 1] for i in range(len(stream))]) == expected
    assert feed_all(random_split(stream, rng)) == expected


def test_crlf_split_between_cr_and_lf() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n\r") == []
    assert parser.feed(b"\n") == [SSEEvent(b"x")]


def test_utf8_sequence_split_across_chunks() -> None:
    encoded = "data: 世\n\n".encode()
    cut = encoded.index("世".encode()) + 1  # inside the 3-byte sequence
    parser = SSEParser()
    assert parser.feed(encoded[:cut]) == []
    assert parser.feed(encoded[cut:]) == [SSEEvent("世".encode())]


def test_event_is_emitted_only_at_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"data: b\n") == []
    assert parser.feed(b"\n") == [SSEEvent(b"a\nb")]


def test_comments_only_produce_no_events() -> None:
    parser = SSEParser()
    assert parser.feed(KEEPALIVE_FRAME * 3 + b": x\r\n\r\n") == []
    assert parser.flush() == []


def test_event_name_applies_to_one_event_only() -> None:
    events = feed_all([b"event: error\ndata: 1\n\ndata: 2\n\n"])
    assert events == [SSEEvent(b"1", "error"), SSEEvent(b"2", None)]


def test_event_without_data_is_not_dispatched_and_name_does_not_leak() -> None:
    events = feed_all([b"event: ping\n\ndata: 2\n\n"])
    assert events == [SSEEvent(b"2", None)]


def test_several_events_in_one_chunk() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: 1\n\ndata: 2\n\ndata: 3") == [SSEEvent(b"1"), SSEEvent(b"2")]
    assert parser.flush() == [SSEEvent(b"3")]


def test_flush_emits_final_event_without_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"done":true}') == []
    assert parser.flush() == [SSEEvent(b'{"done":true}')]
    assert parser.flush() == []


def test_flush_emits_event_whose_line_ended_but_blank_line_missing() -> None:
    parser = SSEParser()
    assert parser.feed(b"event: end\ndata: last\r\n") == []
    assert parser.flush() == [SSEEvent(b"last", "end")]


def test_flush_on_empty_parser_is_empty() -> None:
    assert SSEParser().flush() == []


def test_done_sentinel() -> None:
    events = feed_all([b'data: {"x":1}\n\n', DONE_FRAME])
    assert events[-1].data == DONE
    assert DONE == b"[DONE]"


def test_frame_round_trips_through_parser() -> None:
    payloads = [b'{"id":"1"}', b"plain", DONE]
    wire = b"".join(frame(p) for p in payloads)
    assert wire.startswith(b"data: ")
    assert feed_all([wire]) == [SSEEvent(p) for p in payloads]
