"""Scaling with worker processes: one Switchyard process against two, on this machine's cores.

Two Switchyard processes share one data directory and one Redis (their own redis-server,
started here), as replicas do: reservations, rate limits and breakers are shared through
Redis, accounting goes to the one database. Upstream: the canned nginx of `peers.py`.

Configurations (non-streaming and streaming, c=32 in total):
- `1 proc, in-process state`: one process on CPU 0, no Redis (the default deployment);
- `1 proc, Redis`: the same with shared state in Redis;
- `2 procs, Redis`: one process on CPU 0 and one on CPU 1, each driven by its own wrk
  with half the connections.
wrk, the upstream nginx and Redis run on CPU 1. With two processes CPU 1 is shared by the
second process and the load side, so the ratio measured is a floor of what two free cores
give; the CPU per request column says whether a second process costs anything extra.

    .venv/bin/python bench/workers.py [--duration 6] [--rounds 2]

Writes bench/results/workers.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import _harness as h
import peers


@dataclass(frozen=True)
class Config:
    name: str
    procs: int
    redis: bool


CONFIGS = (
    Config("1 proc, in-process state", 1, False),
    Config("1 proc, Redis", 1, True),
    Config("2 procs, Redis", 2, True),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--output", type=Path, default=h.RESULTS / "workers.md")
    return parser.parse_args(argv)


def start_redis(procs: h.Processes, tmp: Path) -> str:
    port = h.free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(tmp)]
    child = procs.start("redis", argv, h.LOAD_CPU)
    for _ in range(100):
        probe = subprocess.run(
            ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, check=False
        )
        if probe.stdout.strip() == "PONG":
            return f"redis://127.0.0.1:{port}/0"
        if child.process.poll() is not None:
            break
        threading.Event().wait(0.1)
    raise RuntimeError(f"redis-server did not start:\n{child.log_tail()}")


def start_gateways(
    procs: h.Processes, data: Path, config: Config, redis_url: str, upstream: str, tag: str
) -> tuple[list[h.Child], list[str]]:
    shared = f'redis_url = "{redis_url}"\nredis_prefix = "{tag}"\n' if config.redis else ""
    (data / "switchyard.toml").write_text(
        shared
        + f'[providers.openai]\napi_key = "{h.SIM_API_KEY}"\nbase_url = "{upstream}/v1"\n'
        + h.NO_LOCAL_MODELS,
        "utf-8",
    )
    children, bases = [], []
    for i in range(config.procs):
        port = h.free_port()
        argv = [*h.switchyard_command(data, port), "--log-level", "warning"]
        child = procs.start(f"switchyard-{tag}-{i}", argv, h.SERVER_CPU if i == 0 else h.LOAD_CPU)
        base = f"http://127.0.0.1:{port}"
        h.wait_switchyard(child, base)
        children.append(child)
        bases.append(base)
    return children, bases


def drive(targets: list[h.Target], concurrency: int, duration: float) -> list[h.LoadResult]:
    """One wrk per target, at the same time, splitting the connections."""
    share = max(1, concurrency // len(targets))
    results: list[h.LoadResult | None] = [None] * len(targets)

    def one(i: int) -> None:
        results[i] = h.run_load(targets[i], share, duration, "wrk")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


@dataclass
class Row:
    config: str
    stream: bool
    rps: list[float]
    cpu_ms: list[float]
    p50: list[float]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    h.exit_cleanly_on_signals()
    rows: dict[tuple[str, bool], Row] = {}
    with h.workdir("switchyard-workers-") as tmp, h.Processes(tmp) as procs:
        upstream = peers.CannedUpstream(procs, tmp)
        redis_url = start_redis(procs, tmp)
        for rnd in range(args.rounds):
            for stream in (False, True):
                order = CONFIGS if rnd % 2 == 0 else tuple(reversed(CONFIGS))
                for n, config in enumerate(order):
                    tag = f"r{rnd}{int(stream)}{n}"
                    data = tmp / f"data-{tag}"
                    api_key = h.prepare_data_dir(data, upstream.base(stream))
                    children, bases = start_gateways(
                        procs, data, config, redis_url, upstream.base(stream), tag
                    )
                    targets = [h.gateway_target(b, api_key, stream) for b in bases]
                    for t in targets:
                        h.check_target(t, stream)
                    drive(targets, args.concurrency, args.warmup)
                    cpu_before = sum(h.tree_cpu_seconds(c.pid) for c in children)
                    results = drive(targets, args.concurrency, args.duration)
                    cpu = sum(h.tree_cpu_seconds(c.pid) for c in children) - cpu_before
                    for child in children:
                        procs.stop(child)
                    done = sum(r.requests for r in results)
                    rps = sum(r.rps for r in results)
                    errors = sum(r.errors for r in results)
                    row = rows.setdefault(
                        (config.name, stream), Row(config.name, stream, [], [], [])
                    )
                    row.rps.append(rps)
                    row.cpu_ms.append(1000 * cpu / done if done else float("nan"))
                    row.p50.append(statistics.median(r.p50_ms for r in results))
                    print(
                        f"round {rnd} {'stream' if stream else 'plain'} {config.name}: "
                        f"{rps:.0f} req/s, {row.cpu_ms[-1]:.3f} ms CPU/req, errors {errors}",
                        file=sys.stderr,
                    )
    report = render(rows, args)
    print(report)
    h.write_report(args.output, report)
    return 0


def _spread(values: list[float], digits: int) -> str:
    med = statistics.median(values)
    return f"{med:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def render(rows: dict[tuple[str, bool], Row], args: argparse.Namespace) -> str:
    table = []
    for stream in (False, True):
        base = rows.get((CONFIGS[1].name, stream))
        for config in CONFIGS:
            row = rows.get((config.name, stream))
            if row is None:
                continue
            ratio = (
                statistics.median(row.rps) / statistics.median(base.rps)
                if base and base.rps
                else float("nan")
            )
            table.append(
                [
                    "streaming" if stream else "non-streaming",
                    config.name,
                    _spread(row.rps, 0),
                    f"{ratio:.2f}x",
                    _spread(row.cpu_ms, 3),
                    f"{statistics.median(row.p50):.1f}",
                ]
            )
    headers = [
        "mode",
        "configuration",
        "req/s median (range)",
        "vs 1 proc, Redis",
        "CPU ms/req median (range)",
        "p50 ms",
    ]
    return "\n".join(
        [
            "# Switchyard with one and two worker processes",
            "",
            f"c={args.concurrency} in total, {args.duration:g} s per measurement after "
            f"{args.warmup:g} s warm-up, {args.rounds} rounds in alternating order; "
            "median and range over rounds. Canned nginx upstream, wrk, Redis on CPU 1; "
            "process 1 on CPU 0, process 2 on CPU 1 (shared with the load side).",
            "",
            h.md_table(headers, table, numeric=False),
            "",
            f"Load average at the end: {h.load_average()}. Source: {h.switchyard_source()}.",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
