"""ASGI servers for Switchyard: uvicorn (uvloop + httptools) vs granian, same app.

Both serve `switchyard.server.factory:app_from_env` (the factory `switchyard serve` hands
to uvicorn) from the same settings, one worker pinned to CPU 0, behind the same load:
non-streaming and streaming (20 chunks) chat completions at concurrency 32 through the
openai provider to the simulator, which shares CPU 1 with the load generator. Servers run
in alternating order over the rounds (A B, B A, ...) so that drift hits both.

    .venv/bin/python bench/asgi_servers.py [--duration 8] [--warmup 2] [--rounds 2]

Writes bench/results/asgi_servers.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

import _harness as h
from switchyard.server.factory import SETTINGS_ENV
from switchyard.settings import load_settings

APP = "switchyard.server.factory:app_from_env"
ServerCommand = Callable[[str], list[str]]


def uvicorn_command(port: str) -> list[str]:
    # The same options `switchyard serve` passes to uvicorn.run().
    return [
        *(sys.executable, "-m", "uvicorn", APP, "--factory"),
        *("--host", "127.0.0.1", "--port", port),
        *("--loop", "uvloop", "--http", "httptools", "--no-access-log"),
        *("--log-level", "warning"),
    ]


def granian_command(port: str) -> list[str]:
    return [
        *(str(h.BIN / "granian"), "--interface", "asgi", "--factory"),
        *("--host", "127.0.0.1", "--port", port, "--workers", "1"),
        *("--loop", "uvloop", "--http", "1", "--no-access-log"),
        *("--log-level", "warning", APP),
    ]


def servers() -> dict[str, tuple[str, ServerCommand]]:
    """name -> (description, command) for the servers that are installed."""
    found: dict[str, tuple[str, ServerCommand]] = {
        "uvicorn": (
            f"uvicorn {h.package_version('uvicorn')} (uvloop, httptools)",
            uvicorn_command,
        )
    }
    if (h.BIN / "granian").exists():
        found["granian"] = (
            f"granian {h.package_version('granian')} (--interface asgi, uvloop, HTTP/1)",
            granian_command,
        )
    return found


def shown(argv: list[str]) -> str:
    """A command line for the report, with the venv's paths shortened."""
    short = {sys.executable: "python", str(h.BIN / "granian"): "granian"}
    return " ".join(short.get(arg, arg) for arg in argv)


@dataclass(frozen=True)
class Sample:
    server: str
    stream: bool
    result: h.LoadResult


def median_rps_cpu(results: list[h.LoadResult]) -> tuple[float, float]:
    return (
        statistics.median(r.rps for r in results),
        statistics.median(r.server_cpu_ms_per_request or 0.0 for r in results),
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per case")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per case")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per server")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="total seconds to wait, before measurements, for other processes to stop using "
        "the CPUs (0: never wait)",
    )
    parser.add_argument("--output", type=Path, default=h.RESULTS / "asgi_servers.md")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, tool: str, gate: h.QuietGate) -> list[Sample]:
    found = servers()
    samples: list[Sample] = []
    with h.workdir("switchyard-bench-") as tmp, h.Processes(tmp) as procs:
        sim_base = h.start_simulator(procs)
        data_dir = tmp / "data"
        api_key = h.prepare_data_dir(data_dir, sim_base)
        order = list(found)
        for round_no in range(args.rounds):
            for name in order if round_no % 2 == 0 else order[::-1]:
                port = h.free_port()
                settings = load_settings(overrides={"data_dir": str(data_dir), "port": port})
                env = {SETTINGS_ENV: msgspec.json.encode(settings).decode()}
                server = procs.start(
                    f"{name}-{round_no}", found[name][1](str(port)), h.SERVER_CPU, env
                )
                try:
                    base = f"http://127.0.0.1:{port}"
                    h.wait_switchyard(server, base)
                    for stream in (False, True):
                        target = h.gateway_target(base, api_key, stream, name)
                        h.check_target(target, stream)
                        result = h.measure(
                            target,
                            args.concurrency,
                            args.duration,
                            args.warmup,
                            tool,
                            server.pid,
                            gate,
                        )
                        samples.append(Sample(name, stream, result))
                        print(
                            f"round {round_no + 1} {name:<8} "
                            f"{'stream' if stream else 'json':<6} {result.rps:7.0f} req/s "
                            f"p50 {result.p50_ms:6.2f} ms p99 {result.p99_ms:6.2f} ms "
                            f"CPU {h.fmt(result.server_cpu_ms_per_request, 3)} ms/req"
                        )
                    if server.process.poll() is not None:
                        raise RuntimeError(f"{name} died during the run:\n{server.log_tail()}")
                finally:
                    procs.stop(server)
    return samples


def report(
    args: argparse.Namespace, tool: str, gate: h.QuietGate, samples: list[Sample], took: float
) -> str:
    found = servers()
    summary: list[list[object]] = []
    detail: list[list[object]] = []
    for stream in (False, True):
        mode = f"streaming ({h.STREAM_CHUNKS} chunks)" if stream else "non-streaming"
        by_server = {
            name: [s.result for s in samples if s.server == name and s.stream == stream]
            for name in found
        }
        for name, results in by_server.items():
            for i, r in enumerate(results, 1):
                detail.append(
                    [
                        mode,
                        name,
                        i,
                        f"{r.rps:.0f}",
                        f"{r.p50_ms:.2f}",
                        f"{r.p90_ms:.2f}",
                        f"{r.p99_ms:.2f}",
                        r.errors,
                        h.fmt(r.server_cpu_ms_per_request, 3),
                        h.fmt(None if r.server_cpu_share is None else 100 * r.server_cpu_share, 0),
                        *h.busy_cells(r),
                    ]
                )
        base_rps, base_cpu = median_rps_cpu(by_server["uvicorn"])
        for name, results in by_server.items():
            rps, cpu = median_rps_cpu(results)
            cpus = [r.server_cpu_ms_per_request or 0.0 for r in results]
            summary.append(
                [
                    mode,
                    found[name][0],
                    f"{rps:.0f}",
                    f"{min(r.rps for r in results):.0f}-{max(r.rps for r in results):.0f}",
                    f"{rps / base_rps:.2f}x",
                    f"{cpu:.3f}",
                    f"{min(cpus):.3f}-{max(cpus):.3f}",
                    f"{cpu / base_cpu:.2f}x",
                ]
            )
    loadgen = h.loadgen_note(tool, args.concurrency, args.duration)
    config = [
        ("app", f"`{APP}` (factory), settings from `{SETTINGS_ENV}`"),
        ("uvicorn command", f"`{shown(uvicorn_command('PORT'))}`"),
        ("granian command", f"`{shown(granian_command('PORT'))}`"),
        ("load generator", loadgen),
        ("duration per case", f"{args.warmup:g} s warm-up (discarded) + {args.duration:g} s"),
        ("rounds", f"{args.rounds}, server order alternating; median of rounds in the summary"),
        ("upstream", f"`tests/simulators/openai_sim.py`, {h.STREAM_CHUNKS}-token replies"),
        ("CPU", h.pinning_note()),
        ("quiet machine", gate.note()),
        ("wall time of the run", f"{took:.0f} s"),
    ]
    sections = [
        "# ASGI servers: uvicorn vs granian serving Switchyard",
        "Generated by `bench/asgi_servers.py`. Server CPU ms/req is the CPU time of the "
        "server's whole process tree per request (lower is better); it is the figure that "
        "decides capacity once CPU 0 is saturated (server CPU % near 100). *Other load on "
        "CPU 0* is CPU 0's busy time not spent in the server: above "
        f"{100 * h.NOISY_LOAD:.0f} % another process on the machine was competing with the "
        "measurement, which lowers req/s and raises CPU ms/req (less batching per event-loop "
        "turn).",
        "## Summary (median of rounds, relative to uvicorn)",
        h.md_table(
            [
                "case",
                "server",
                "req/s",
                "req/s range",
                "req/s ratio",
                "CPU ms/req",
                "CPU ms/req range",
                "CPU ratio",
            ],
            summary,
        ),
        "## All measurements",
        h.md_table(
            [
                "case",
                "server",
                "round",
                "req/s",
                "p50 (ms)",
                "p90 (ms)",
                "p99 (ms)",
                "errors",
                "server CPU ms/req",
                "server CPU %",
                "other load on CPU 0 %",
                "CPU 1 busy %",
            ],
            detail,
        ),
        "## Configuration",
        h.kv_table(config),
        "## Machine",
        h.kv_table(h.machine_info((*h.PACKAGES, "granian"))),
    ]
    return "\n\n".join(sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    h.exit_cleanly_on_signals()
    tool = h.loadgen_name(args.loadgen)
    if tool == "python" and h.wrk_path() is None:
        print("wrk not found: using the Python (aiohttp) load generator", file=sys.stderr)
    if "granian" not in servers():
        print("granian is not installed: measuring uvicorn only", file=sys.stderr)
    h.pin_self(h.LOAD_CPU)
    gate = h.QuietGate(args.quiet_wait)
    started = time.monotonic()
    samples = run(args, tool, gate)
    took = time.monotonic() - started
    h.write_report(args.output, report(args, tool, gate, samples, took))
    return 0


if __name__ == "__main__":
    sys.exit(main())
