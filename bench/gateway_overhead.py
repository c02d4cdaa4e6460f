"""What Switchyard costs on top of the upstream: the same load sent straight to the
OpenAI simulator and through Switchyard, side by side in one run.

Cases: non-streaming and streaming (20 content chunks) chat completions, at concurrency 1
and 32, each driven for a fixed duration after a warm-up. Switchyard runs alone on CPU 0;
the simulator and the load generator (wrk, or an aiohttp fallback) share CPU 1.

    .venv/bin/python bench/gateway_overhead.py            # also `make bench`
    .venv/bin/python bench/gateway_overhead.py --duration 3 --warmup 1   # quick check

Writes bench/results/gateway_overhead.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import _harness as h


@dataclass(frozen=True)
class Case:
    stream: bool
    concurrency: int
    direct: h.LoadResult
    gateway: h.LoadResult

    @property
    def mode(self) -> str:
        return f"streaming ({h.STREAM_CHUNKS} chunks)" if self.stream else "non-streaming"

    @property
    def throughput_ratio(self) -> float:
        return self.gateway.rps / self.direct.rps if self.direct.rps else float("nan")

    @property
    def noisy(self) -> bool:
        loads = [h.foreign_load(r) for r in (self.direct, self.gateway)]
        return any(load is not None and load > h.NOISY_LOAD for load in loads)

    @property
    def added_p50_ms(self) -> float:
        return self.gateway.p50_ms - self.direct.p50_ms


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per case")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per case")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="total seconds to wait, before measurements, for other processes to stop using "
        "the CPUs (0: never wait)",
    )
    parser.add_argument(
        "--output", type=Path, default=h.RESULTS / "gateway_overhead.md", help="markdown report"
    )
    return parser.parse_args(argv)


def run(
    args: argparse.Namespace, tool: str, gate: h.QuietGate
) -> tuple[list[Case], dict[str, int]]:
    cases: list[Case] = []
    frames: dict[str, int] = {}
    with h.workdir("switchyard-bench-") as tmp, h.Processes(tmp) as procs:
        sim_base = h.start_simulator(procs)
        api_key = h.prepare_data_dir(tmp / "data", sim_base)
        port = h.free_port()
        server = procs.start("switchyard", h.switchyard_command(tmp / "data", port), h.SERVER_CPU)
        gw_base = f"http://127.0.0.1:{port}"
        h.wait_switchyard(server, gw_base)
        print(f"simulator at {sim_base}, Switchyard at {gw_base} (pid {server.pid})")

        for stream in (False, True):
            direct = h.direct_target(sim_base, stream)
            gateway = h.gateway_target(gw_base, api_key, stream)
            kind = "stream" if stream else "json"
            frames[f"direct {kind}"] = h.check_target(direct, stream)
            frames[f"switchyard {kind}"] = h.check_target(gateway, stream)
            for concurrency in args.concurrency:
                # Interleave direct and gateway so that drift affects both alike.
                d = h.measure(direct, concurrency, args.duration, args.warmup, tool, gate=gate)
                g = h.measure(
                    gateway, concurrency, args.duration, args.warmup, tool, server.pid, gate
                )
                case = Case(stream, concurrency, d, g)
                cases.append(case)
                print(
                    f"{case.mode:<24} c={concurrency:<3} direct {d.rps:8.0f} req/s "
                    f"p50 {d.p50_ms:7.2f} ms | switchyard {g.rps:8.0f} req/s "
                    f"p50 {g.p50_ms:7.2f} ms | ratio {case.throughput_ratio:.2f} "
                    f"+p50 {case.added_p50_ms:.2f} ms"
                )
        if server.process.poll() is not None:
            raise RuntimeError(f"Switchyard died during the run:\n{server.log_tail()}")
    return cases, frames


def report(
    args: argparse.Namespace,
    tool: str,
    gate: h.QuietGate,
    cases: list[Case],
    frames: dict[str, int],
    took: float,
) -> str:
    rows: list[list[object]] = []
    for case in cases:
        for name, r in (("direct", case.direct), ("switchyard", case.gateway)):
            rows.append(
                [
                    case.mode,
                    case.concurrency,
                    name,
                    r.requests,
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
    summary = [
        [
            case.mode,
            case.concurrency,
            f"{case.throughput_ratio:.2f}",
            f"{case.added_p50_ms:+.2f}",
            f"{case.gateway.p99_ms - case.direct.p99_ms:+.2f}",
            "noisy" if case.noisy else "quiet",
        ]
        for case in cases
    ]
    loadgen = h.loadgen_note(tool, max(args.concurrency), args.duration)
    config = [
        ("load generator", loadgen),
        ("duration per case", f"{args.warmup:g} s warm-up (discarded) + {args.duration:g} s"),
        ("concurrency", ", ".join(str(c) for c in args.concurrency)),
        (
            "request body",
            f'`{h.chat_body(h.GATEWAY_MODEL, False).decode()}` (+ `"stream":true`; '
            f"direct: model `{h.UPSTREAM_MODEL}`)",
        ),
        ("upstream", f"`tests/simulators/openai_sim.py`, replies of {h.STREAM_CHUNKS} tokens"),
        (
            "SSE frames per streamed response",
            ", ".join(f"{k}: {v}" for k, v in frames.items() if "stream" in k),
        ),
        ("Switchyard", "`switchyard serve` (uvicorn, uvloop, httptools, 1 worker, log level info)"),
        ("CPU", h.pinning_note()),
        ("quiet machine", gate.note()),
        ("wall time of the run", f"{took:.0f} s"),
    ]
    sections = [
        "# Gateway overhead: direct to the upstream vs through Switchyard",
        "Generated by `bench/gateway_overhead.py`; numbers from one run on the machine below. "
        "Latencies are end-to-end per request (whole body, or whole stream). Throughput "
        "ratio = Switchyard req/s / direct req/s. At c=32 the direct case is limited by the "
        "simulator (sharing CPU 1 with the load generator), the Switchyard case by whichever "
        "of Switchyard (CPU 0) and the simulator saturates first: see the Switchyard CPU "
        "column (100 % = CPU 0 fully used). *Other load on CPU 0* is CPU 0's busy time not "
        f"spent in Switchyard: above {100 * h.NOISY_LOAD:.0f} % another process on the machine "
        "was competing with the measurement, and the case is marked *noisy*.",
        "## Summary",
        h.md_table(
            [
                "case",
                "concurrency",
                "throughput ratio",
                "added p50 (ms)",
                "added p99 (ms)",
                "CPU 0",
            ],
            summary,
        ),
        "## All measurements",
        h.md_table(
            [
                "case",
                "concurrency",
                "target",
                "requests",
                "req/s",
                "p50 (ms)",
                "p90 (ms)",
                "p99 (ms)",
                "errors",
                "Switchyard CPU ms/req",
                "Switchyard CPU %",
                "other load on CPU 0 %",
                "CPU 1 busy %",
            ],
            rows,
        ),
        "## Configuration",
        h.kv_table(config),
        "## Machine",
        h.kv_table(h.machine_info()),
    ]
    return "\n\n".join(sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    h.exit_cleanly_on_signals()
    tool = h.loadgen_name(args.loadgen)
    if tool == "python" and h.wrk_path() is None:
        print("wrk not found: using the Python (aiohttp) load generator", file=sys.stderr)
    h.pin_self(h.LOAD_CPU)
    gate = h.QuietGate(args.quiet_wait)
    started = time.monotonic()
    cases, frames = run(args, tool, gate)
    took = time.monotonic() - started
    h.write_report(args.output, report(args, tool, gate, cases, frames, took))
    return 0


if __name__ == "__main__":
    sys.exit(main())
