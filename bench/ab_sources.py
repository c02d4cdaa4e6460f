"""A/B: the same load through Switchyard built from two (or more) source trees, interleaved.

Used to decide whether a hot-path change wins: each variant is its own server process on
CPU 0 (only one loaded at a time), the simulator and wrk share CPU 1, and rounds alternate
A B B A ... so slow drifts in machine load hit every variant alike. Reports, per variant and
case, the median and the spread (min-max) over rounds of req/s and server CPU per request.

    .venv/bin/python bench/ab_sources.py base=/tmp/base/src new=src --rounds 4
    .venv/bin/python bench/ab_sources.py a=src b=src --env b:SWITCHYARD_X=1   # same tree

Each variant is `name=path/to/src` (put first on PYTHONPATH of its server). Prints a
markdown table; writes nothing unless --output is given.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import _harness as h


@dataclass(frozen=True)
class Variant:
    name: str
    src: Path
    env: dict[str, str]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("variants", nargs="+", help="name=path/to/src")
    parser.add_argument("--env", action="append", default=[], help="name:VAR=value")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32])
    parser.add_argument("--modes", nargs="+", choices=["plain", "stream"], default=["plain"])
    parser.add_argument("--output", type=Path)
    return parser.parse_args(argv)


def variants_of(args: argparse.Namespace) -> list[Variant]:
    envs: dict[str, dict[str, str]] = {}
    for item in args.env:
        name, _, assignment = item.partition(":")
        var, _, value = assignment.partition("=")
        envs.setdefault(name, {})[var] = value
    out = []
    for spec in args.variants:
        name, _, path = spec.partition("=")
        out.append(Variant(name, Path(path).resolve(), envs.get(name, {})))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    h.exit_cleanly_on_signals()
    variants = variants_of(args)
    results: dict[tuple[str, str, int], list[h.LoadResult]] = {}
    with h.workdir("switchyard-ab-") as tmp, h.Processes(tmp) as procs:
        sim_base = h.start_simulator(procs)
        servers: dict[str, tuple[h.Child, str, str]] = {}
        for v in variants:
            data = tmp / f"data-{v.name}"
            api_key = h.prepare_data_dir(data, sim_base)
            # The bundled local model is not on these requests' path; skip loading it.
            with (data / "switchyard.toml").open("a", encoding="utf-8") as config:
                config.write(h.NO_LOCAL_MODELS)
            port = h.free_port()
            env = {"PYTHONPATH": str(v.src), **v.env}
            child = procs.start(
                f"switchyard-{v.name}", h.switchyard_command(data, port), h.SERVER_CPU, env
            )
            base = f"http://127.0.0.1:{port}"
            h.wait_switchyard(child, base)
            servers[v.name] = (child, base, api_key)
        for rnd in range(args.rounds):
            order = variants if rnd % 2 == 0 else list(reversed(variants))
            for mode in args.modes:
                stream = mode == "stream"
                for c in args.concurrency:
                    for v in order:
                        child, base, key = servers[v.name]
                        target = h.gateway_target(base, key, stream, v.name)
                        h.check_target(target, stream)
                        r = h.measure(target, c, args.duration, args.warmup, "wrk", child.pid)
                        results.setdefault((v.name, mode, c), []).append(r)
                        print(
                            f"round {rnd} {mode} c={c} {v.name}: {r.rps:.0f} req/s, "
                            f"{r.server_cpu_ms_per_request or 0:.3f} ms CPU/req, "
                            f"p50 {r.p50_ms:.2f} ms, busy {r.cpu_busy}",
                            file=sys.stderr,
                        )
    rows = []
    for (name, mode, c), rs in results.items():
        rps = [r.rps for r in rs]
        cpu = [r.server_cpu_ms_per_request or 0.0 for r in rs]
        p50 = [r.p50_ms for r in rs]
        rows.append(
            [
                name,
                mode,
                c,
                f"{statistics.median(rps):.0f} ({min(rps):.0f}-{max(rps):.0f})",
                f"{statistics.median(cpu):.3f} ({min(cpu):.3f}-{max(cpu):.3f})",
                f"{statistics.median(p50):.2f}",
            ]
        )
    table = h.md_table(
        ["variant", "mode", "c", "req/s median (range)", "CPU ms/req median (range)", "p50 ms"],
        rows,
        numeric=False,
    )
    print(table)
    if args.output:
        h.write_report(args.output, table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
