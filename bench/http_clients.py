"""Upstream HTTP clients for the gateway's hot path: aiohttp vs httpx (and httpx2).

Each client, in this process on uvloop (as in the gateway), sends N chat-completion POSTs
at concurrency 32 to the OpenAI simulator running in its own process, after a warm-up of
its own connection pool. Measured: requests/s and the CPU seconds this process spent per
1000 requests (time.process_time). The simulator is on CPU 1, this process on CPU 0, so
the CPU figure is the client's own cost; requests/s may be capped by the simulator.

Clients are measured in interleaved rounds (a b c, a b c, ...) and reported by median, with
the spread across rounds. Non-streaming is the required case; streaming (20 chunks, body
read chunk by chunk) is measured too because the gateway mostly relays streams.

    .venv/bin/python bench/http_clients.py [--requests 3000] [--rounds 3]

Writes bench/results/http_clients.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import aiohttp
import uvloop

import _harness as h

# Sends one request (body, streamed?) and returns the number of body bytes read.
Send = Callable[[bytes, bool], Awaitable[int]]
ClientFactory = Callable[[str, Mapping[str, str]], AbstractAsyncContextManager[Send]]

POOL_SIZE = 100  # per-client connection limit; above the concurrency, as in the gateway
TIMEOUT = 30.0


class BadStatus(Exception):
    pass


@asynccontextmanager
async def aiohttp_client(url: str, headers: Mapping[str, str]) -> AsyncIterator[Send]:
    """Configured like switchyard.upstream.client.UpstreamClient."""
    connector = aiohttp.TCPConnector(limit=POOL_SIZE, keepalive_timeout=30)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_read=TIMEOUT, sock_connect=TIMEOUT),
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as session:
        request_headers = dict(headers)

        async def send(body: bytes, stream: bool) -> int:
            async with session.post(url, data=body, headers=request_headers) as response:
                if response.status != 200:
                    raise BadStatus(response.status)
                if not stream:
                    return len(await response.read())
                size = 0
                async for chunk in response.content.iter_any():
                    size += len(chunk)
                return size

        yield send


def httpx_like(module: ModuleType) -> ClientFactory:
    """A client factory for httpx or a module with the same API (httpx2)."""

    @asynccontextmanager
    async def client(url: str, headers: Mapping[str, str]) -> AsyncIterator[Send]:
        limits = module.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
        async with module.AsyncClient(limits=limits, timeout=TIMEOUT) as session:
            request_headers = dict(headers)

            async def send(body: bytes, stream: bool) -> int:
                if not stream:
                    response = await session.post(url, content=body, headers=request_headers)
                    if response.status_code != 200:
                        raise BadStatus(response.status_code)
                    return len(response.content)
                async with session.stream(
                    "POST", url, content=body, headers=request_headers
                ) as response:
                    if response.status_code != 200:
                        raise BadStatus(response.status_code)
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                    return size

            yield send

    return client


def available_clients() -> dict[str, tuple[str, ClientFactory]]:
    """name -> (version, factory) for every client that can be imported."""
    clients: dict[str, tuple[str, ClientFactory]] = {
        "aiohttp ClientSession": (h.package_version("aiohttp"), aiohttp_client)
    }
    for name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        clients[f"{name} AsyncClient"] = (h.package_version(name), httpx_like(module))
    return clients


async def send_many(send: Send, body: bytes, stream: bool, count: int, concurrency: int) -> int:
    """Send `count` requests with `concurrency` workers; return the bytes received."""
    remaining = count
    received = 0

    async def worker() -> None:
        nonlocal remaining, received
        while remaining > 0:
            remaining -= 1
            received += await send(body, stream)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return received


@dataclass(frozen=True)
class Sample:
    rps: float
    cpu_per_1000: float  # CPU seconds of this process per 1000 requests


async def measure_client(
    factory: ClientFactory, target: h.Target, stream: bool, args: argparse.Namespace
) -> Sample:
    async with factory(target.url, target.headers) as send:
        await send_many(send, target.body, stream, args.warmup, args.concurrency)
        gc.collect()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await send_many(send, target.body, stream, args.requests, args.concurrency)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return Sample(args.requests / wall, 1000 * cpu / args.requests)


@dataclass(frozen=True)
class Row:
    mode: str
    client: str
    version: str
    samples: list[Sample]

    @property
    def rps(self) -> float:
        return statistics.median(s.rps for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu_per_1000 for s in self.samples)

    @property
    def rps_range(self) -> str:
        return span([s.rps for s in self.samples], 0)

    @property
    def cpu_range(self) -> str:
        return span([s.cpu_per_1000 for s in self.samples], 3)


def span(values: list[float], digits: int) -> str:
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000, help="measured requests per run")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured requests per run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per client")
    parser.add_argument("--no-stream", action="store_true", help="skip the streaming case")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=15.0,
        help="total seconds to wait, before measurements, for other processes to stop using "
        "the CPUs (0: never wait)",
    )
    parser.add_argument("--output", type=Path, default=h.RESULTS / "http_clients.md")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, gate: h.QuietGate) -> list[Row]:
    clients = available_clients()
    modes = [False] if args.no_stream else [False, True]
    rows: list[Row] = []
    with h.workdir("switchyard-bench-") as tmp, h.Processes(tmp) as procs:
        sim_base = h.start_simulator(procs)
        h.pin_self(h.SERVER_CPU)  # after starting the simulator: it is pinned to CPU 1
        for stream in modes:
            target = h.direct_target(sim_base, stream)
            h.check_target(target, stream)
            mode = f"streaming ({h.STREAM_CHUNKS} chunks)" if stream else "non-streaming"
            samples: dict[str, list[Sample]] = {name: [] for name in clients}
            for _ in range(args.rounds):
                for name, (_, factory) in clients.items():
                    gate.wait()
                    sample = uvloop.run(measure_client(factory, target, stream, args))
                    samples[name].append(sample)
                    print(
                        f"{mode:<24} {name:<22} {sample.rps:7.0f} req/s "
                        f"{sample.cpu_per_1000:6.3f} CPU s/1000 req"
                    )
            rows += [Row(mode, name, clients[name][0], samples[name]) for name in clients]
    return rows


def report(args: argparse.Namespace, gate: h.QuietGate, rows: list[Row], took: float) -> str:
    table: list[list[object]] = []
    for row in rows:
        baseline = next(r for r in rows if r.mode == row.mode)  # aiohttp comes first
        table.append(
            [
                row.mode,
                f"{row.client} {row.version}",
                f"{row.rps:.0f}",
                row.rps_range,
                f"{row.cpu:.3f}",
                row.cpu_range,
                f"{row.cpu / baseline.cpu:.2f}x",
                f"{row.rps / baseline.rps:.2f}x",
            ]
        )
    config = [
        ("requests per run", f"{args.requests} measured after {args.warmup} warm-up requests"),
        ("concurrency", f"{args.concurrency} tasks sharing one client (pool limit {POOL_SIZE})"),
        ("rounds", f"{args.rounds}, clients interleaved; median reported, min-max beside it"),
        ("event loop", f"uvloop {h.package_version('uvloop')}"),
        (
            "upstream",
            f"`tests/simulators/openai_sim.py` (aiohttp server), {h.STREAM_CHUNKS}-token replies",
        ),
        ("CPU", h.pinning_note().replace("load generator", "client under test (CPU 0)")),
        ("quiet machine", gate.note()),
        ("wall time of the run", f"{took:.0f} s"),
    ]
    sections = [
        "# Upstream HTTP clients: aiohttp vs httpx",
        "Generated by `bench/http_clients.py`. CPU s/1000 req is the client process's "
        "user+system CPU time per 1000 requests (lower is better) and is the figure that "
        "matters for a gateway, whose CPU is the bottleneck; req/s can be capped by the "
        "simulator on the other core. Ratios are relative to aiohttp in the same mode.",
        h.md_table(
            [
                "case",
                "client",
                "req/s (median)",
                "req/s range",
                "CPU s/1000 req",
                "CPU range",
                "CPU vs aiohttp",
                "req/s vs aiohttp",
            ],
            table,
        ),
        "## Configuration",
        h.kv_table(config),
        "## Machine",
        h.kv_table(h.machine_info(("aiohttp", "httpx", "httpx2", "httpcore", "uvloop"))),
    ]
    return "\n\n".join(sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    h.exit_cleanly_on_signals()
    gate = h.QuietGate(args.quiet_wait)
    started = time.monotonic()
    rows = run(args, gate)
    h.write_report(args.output, report(args, gate, rows, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
