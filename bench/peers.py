"""Switchyard next to its peers: direct, nginx, Switchyard, LiteLLM and Portkey, side by side.

One run measures, against the same canned upstream (nginx answering every POST with a fixed
OpenAI reply), the upstream itself (the floor), nginx as a plain reverse proxy, Switchyard
(auth, routing and accounting on), LiteLLM's proxy and Portkey's gateway: req/s, latency
percentiles, latency added over direct, CPU per 1,000 requests and resident memory, for
non-streaming and streaming chat completions at several concurrencies. Then it holds 1,000
concurrent slow streams (the project's simulator with a `slow_tokens` fault upstream) open
through each gateway and reports memory and errors.

The peers are not project dependencies: the script installs them into bench/.peers/ on first
use (LiteLLM into its own venv with pip, Portkey with npm, matplotlib for the chart into a
third venv) and reuses them afterwards; nginx and wrk come from apt-get when missing. A peer
that cannot be installed or started is reported as such and the run goes on without it.

    .venv/bin/python bench/peers.py            # full run, about 11 minutes once installed
    .venv/bin/python bench/peers.py --quick    # c=1 and 32, short cases, about 2.5 minutes

Writes bench/results/peers.md, bench/results/peers.json and bench/results/peers.png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import _harness as h

PEERS = h.BENCH / ".peers"
PLOT_SCRIPT = h.BENCH / "_peers_plot.py"
LITELLM_MASTER_KEY = "sk-bench-litellm-master"
CANNED_TOKENS = ["Hello", *(f" word{i}" for i in range(1, h.STREAM_CHUNKS))]
FD_LIMIT = 65536
# Seconds without a newly opened stream after which the ramp of the streams test ends.
STALL = 5.0

# Display order of the throughput targets; "direct" is the upstream itself.
TARGETS = ("direct", "nginx", "switchyard", "litellm", "portkey")
GATEWAYS = TARGETS[1:]
LABELS = {
    "direct": "direct (upstream)",
    "nginx": "nginx proxy",
    "switchyard": "Switchyard",
    "litellm": "LiteLLM",
    "portkey": "Portkey",
}

T = TypeVar("T")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="c=1 and 32 only, 2 s per case without warm-up, 10 s stream hold, 5 s quiet-wait",
    )
    parser.add_argument("--duration", type=float, help="seconds measured per case (6; quick 2)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per case (2; quick 0)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", help="concurrencies (1 32 256; quick 1 32)"
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        choices=TARGETS,
        default=list(TARGETS),
        help="which targets to measure (all by default)",
    )
    parser.add_argument("--streams", type=int, default=1000, help="concurrent slow streams")
    parser.add_argument(
        "--hold", type=float, help="seconds the open streams are held (60; quick 10); 0 skips"
    )
    parser.add_argument(
        "--ramp",
        type=float,
        help="seconds allowed for opening all the streams before the hold (30; quick 10)",
    )
    parser.add_argument(
        "--frame-gap-ms",
        type=float,
        default=2000.0,
        help="slow upstream: milliseconds between stream frames",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        help="total seconds to wait, before measurements, for other processes to stop using "
        "the CPUs (60; quick 5; 0: never wait)",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="use only peers already installed in bench/.peers (no pip/npm/apt-get)",
    )
    parser.add_argument("--output", type=Path, default=h.RESULTS / "peers.md")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "duration": 2.0 if quick else 6.0,
        "warmup": 0.0 if quick else 2.0,
        "hold": 10.0 if quick else 60.0,
        "ramp": 10.0 if quick else 30.0,
        "quiet_wait": 5.0 if quick else 60.0,
        "concurrency": [1, 32] if quick else [1, 32, 256],
    }
    # Seconds to let a gateway settle after start-up before reading its idle memory, and
    # at most to wait for upstream streams to end after the clients left.
    args.settle = 0.5 if quick else 2.0
    args.drain = 3.0 if quick else 10.0
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


# -- bounded commands and installation -----------------------------------------------------


def run_bounded(
    argv: Sequence[str],
    log: Path,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run a command with output appended to `log`; kill its whole process group on timeout
    or when the benchmark is interrupted. Returns the exit status (-9 on timeout)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        process = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=h._die_with_parent,
        )
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            out.write(f"\n(timed out after {timeout:.0f} s)\n".encode())
            return -9
        finally:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def output_of(argv: Sequence[str], timeout: float = 30.0) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
        if done.returncode == 0:
            return (done.stdout or done.stderr).strip()
    return ""


# With the @hono/node-server that npm resolves for Portkey's gateway today (1.19.x; 1.14.2
# too), every streamed request fails with HTTP 500 ("TypeError: immutable" in Portkey's
# updateHeaders; Portkey-AI/gateway#1389). 1.13.5, the version Portkey's own repository
# pins (patches/@hono+node-server+1.13.5.patch), streams; the installer pins it.
HONO_NODE_SERVER = "1.13.5"


def _npm_version(package_json: Path) -> str | None:
    try:
        return str(json.loads(package_json.read_text("utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return None


@dataclass
class Install:
    """Whether a peer (or tool) is usable, its version, and how it got there."""

    name: str
    ok: bool
    version: str = "n/a"
    note: str = ""
    seconds: float = 0.0
    path: Path | None = None


class Installer:
    def __init__(self, allowed: bool) -> None:
        self.allowed = allowed
        self.apt_updated = False
        self.log = PEERS / "install.log"

    def _apt(self, package: str) -> bool:
        if not self.allowed or os.geteuid() != 0 or shutil.which("apt-get") is None:
            return False
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if not self.apt_updated:
            run_bounded(["apt-get", "update", "-q"], self.log, 600, env=env)
            self.apt_updated = True
        argv = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
        return run_bounded(argv, self.log, 900, env=env) == 0

    def binary(self, name: str, package: str) -> Install:
        """A system tool from PATH, installed with apt-get if missing (as root)."""
        started = time.monotonic()
        note = "already installed"
        if shutil.which(name) is None:
            note = f"installed now with `apt-get install {package}`"
            if not self._apt(package):
                why = "not allowed (--no-install)" if not self.allowed else "apt-get failed"
                return Install(name, False, note=f"missing; {why} (see {self.log})")
        version = h.tool_version([name, "-v"])
        if name == "nginx":
            # nginx prints its version on stderr.
            done = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False)
            version = (done.stderr or done.stdout).strip().removeprefix("nginx version: ")
        elif name == "wrk":
            version = " ".join(h.tool_version(["wrk", "-v"]).split()[:2])
        return Install(name, True, version, note, time.monotonic() - started)

    @staticmethod
    def _base_python() -> str:
        base = getattr(sys, "_base_executable", None)
        return base if base and Path(base).exists() else (shutil.which("python3") or "python3")

    def venv(self, name: str, requirement: str, module: str, probe: str) -> Install:
        """A venv under bench/.peers/<name> with `requirement` pip-installed."""
        started = time.monotonic()
        root = PEERS / name
        python = root / "bin" / "python"
        check = [str(python), "-c", f"import importlib.metadata as m; print(m.version({module!r}))"]
        version = output_of(check) if (root / "bin" / probe).exists() else ""
        note = f"cached in `{root.relative_to(h.ROOT)}`"
        if not version:
            if not self.allowed:
                return Install(name, False, note="not installed and --no-install given")
            shutil.rmtree(root, ignore_errors=True)
            note = (
                f"installed now: `python3 -m venv {root.relative_to(h.ROOT)}` + "
                f"`pip install '{requirement}'`"
            )
            print(f"installing {requirement} into {root} (a few minutes the first time)")
            if run_bounded([self._base_python(), "-m", "venv", str(root)], self.log, 300) != 0:
                return Install(name, False, note=f"venv creation failed (see {self.log})")
            pip = [str(root / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
            if run_bounded([*pip, requirement], self.log, 1200) != 0:
                return Install(name, False, note=f"pip install failed (see {self.log})")
            version = output_of(check)
            if not version:
                return Install(name, False, note=f"installed but not importable (see {self.log})")
        return Install(name, True, version, note, time.monotonic() - started, root)

    def portkey(self) -> Install:
        started = time.monotonic()
        root = PEERS / "portkey"
        package = root / "node_modules" / "@portkey-ai" / "gateway" / "package.json"
        note = f"cached in `{root.relative_to(h.ROOT)}`"
        if shutil.which("node") is None:
            return Install("portkey", False, note="node is not installed")
        hono = root / "node_modules" / "@hono" / "node-server" / "package.json"
        if not package.exists() or _npm_version(hono) != HONO_NODE_SERVER:
            if not self.allowed:
                return Install("portkey", False, note="not installed and --no-install given")
            if shutil.which("npm") is None:
                return Install("portkey", False, note="npm is not installed")
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            manifest = {
                "name": "switchyard-bench-portkey",
                "private": True,
                # See HONO_NODE_SERVER: without this, Portkey cannot stream.
                "overrides": {"@hono/node-server": HONO_NODE_SERVER},
            }
            (root / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
            print(f"installing @portkey-ai/gateway into {root}")
            argv = ["npm", "install", "--no-audit", "--no-fund", "@portkey-ai/gateway"]
            if run_bounded(argv, self.log, 900, cwd=root) != 0 or not package.exists():
                return Install("portkey", False, note=f"npm install failed (see {self.log})")
            note = (
                f"installed now: `npm install @portkey-ai/gateway` in `{root.relative_to(h.ROOT)}`"
            )
        note += (
            f", with `@hono/node-server` pinned to {_npm_version(hono)} by an npm override "
            "(with the version npm picks, 1.19.x, every streamed request fails with HTTP 500, "
            "`TypeError: immutable`: Portkey-AI/gateway#1389)"
        )
        meta = json.loads(package.read_text("utf-8"))
        bin_entry = meta.get("bin")
        if isinstance(bin_entry, dict):
            bin_entry = next(iter(bin_entry.values()), None)
        entry = package.parent / (bin_entry or "build/start-server.js")
        if not entry.exists():
            return Install("portkey", False, meta.get("version", "?"), f"no entry point {entry}")
        node = output_of(["node", "--version"])
        version = f"{meta.get('version', '?')} (node {node})"
        return Install("portkey", True, version, note, time.monotonic() - started, entry)


# -- the canned upstream and the nginx proxy -----------------------------------------------


def _completion_body() -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": h.UPSTREAM_MODEL,
        "system_fingerprint": "fp_bench",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "".join(CANNED_TOKENS),
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": len(CANNED_TOKENS), "total_tokens": 29},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _stream_body() -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": h.UPSTREAM_MODEL,
            "system_fingerprint": "fp_bench",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            "usage": None,
        }

    usage = {"prompt_tokens": 9, "completion_tokens": len(CANNED_TOKENS), "total_tokens": 29}
    frames: list[Any] = [chunk({"role": "assistant", "content": "", "refusal": None})]
    frames += [chunk({"content": token}) for token in CANNED_TOKENS]
    frames.append(chunk({}, "stop"))
    frames.append({**chunk({}), "choices": [], "usage": usage})
    lines = [f"data: {json.dumps(f, separators=(',', ':'))}\n\n" for f in frames]
    lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def _nginx_conf(root: Path, server: str) -> str:
    tmp = root / "tmp"
    return f"""worker_processes 1;
daemon off;
master_process on;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{
  worker_connections 8192;
}}
http {{
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
{server}
}}
"""


def wait_http(child: h.Child, url: str, timeout: float = 20.0) -> None:
    """Wait until `url` gives any HTTP response (a proxy in front of an upstream that may
    answer 401 or 404 there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
        with contextlib.suppress(OSError):
            h.http_request(url, timeout=1.0)
            return
        time.sleep(0.1)
    raise RuntimeError(f"{child.name} was not ready within {timeout:.0f} s:\n{child.log_tail()}")


def _nginx_argv(root: Path, conf: Path) -> list[str]:
    return ["nginx", "-p", f"{root}/", "-e", str(root / "error.log"), "-c", str(conf)]


class CannedUpstream:
    """One nginx (1 worker) with two ports: one answers every request with a fixed chat
    completion, the other with a fixed stream of SSE frames. Both are static files: a POST
    to a static file gets 405, which `error_page 405 =200 $uri` turns into the file's
    content with status 200. (nginx's `return 200 '...'` cannot hold the stream: a config
    token is limited to 4 KB.) The gateways send the same path whether they stream or not,
    hence two ports; each gateway is started once per mode, pointing at the right one.
    """

    MODES = ("json", "sse")

    def __init__(self, procs: h.Processes, workdir: Path) -> None:
        self.root = workdir / "upstream-nginx"
        canned = self.root / "canned"
        (self.root / "tmp").mkdir(parents=True)
        canned.mkdir()
        self.conf = self.root / "nginx.conf"
        self.ports = {mode: h.free_port() for mode in self.MODES}
        self.bodies = {"json": _completion_body(), "sse": _stream_body()}
        for mode, body in self.bodies.items():
            (canned / f"reply.{mode}").write_bytes(body)
        # When run as root, nginx's workers run as an unprivileged user (nobody), which
        # must be able to reach the files through the private temporary directory.
        for path in (workdir, self.root):
            path.chmod(0o711)
        canned.chmod(0o755)
        for path in canned.iterdir():
            path.chmod(0o644)
        servers = [
            f"""  server {{
    listen 127.0.0.1:{self.ports[mode]} backlog=4096;
    location / {{
      root {canned};
      rewrite ^ /reply.{mode} break;
      error_page 405 =200 $uri;
    }}
  }}"""
            for mode in self.MODES
        ]
        types = "  types {\n    application/json json;\n    text/event-stream sse;\n  }\n"
        server = types + "  open_file_cache max=16;\n" + "\n".join(servers)
        self.conf.write_text(_nginx_conf(self.root, server), "utf-8")
        self.child = procs.start("upstream-nginx", _nginx_argv(self.root, self.conf), h.LOAD_CPU)
        for mode in self.MODES:
            h.wait_ready(self.child, f"{self.base(mode == 'sse')}/v1/models", timeout=20)
            self._check(mode)

    def base(self, stream: bool) -> str:
        return f"http://127.0.0.1:{self.ports['sse' if stream else 'json']}"

    def _check(self, mode: str) -> None:
        """POST as the gateways do and expect the canned reply."""
        stream = mode == "sse"
        body = h.chat_body(h.UPSTREAM_MODEL, stream)
        url = f"{self.base(stream)}/v1/chat/completions"
        got = h.http_request(url, body, {"Content-Type": "application/json"}, 5)
        if got != (200, self.bodies[mode]):
            error_log = (self.root / "error.log").read_text("utf-8", "replace")[-2000:]
            raise RuntimeError(
                f"upstream nginx does not serve the {mode} reply (got HTTP {got[0]}, "
                f"{got[1][:100]!r}):\n{error_log}"
            )


# -- the gateways --------------------------------------------------------------------------

# The upstreams a gateway can be pointed at: the canned replies (fast) and the simulator
# with slow streams. A request of kind "json" is non-streaming, any other kind streams.
KINDS = ("json", "sse", "slow")


@dataclass
class Running:
    """A started gateway: its process and how to address it for each upstream it knows."""

    name: str
    child: h.Child
    target: Callable[[str], h.Target]
    started_in: float


# start(procs, workdir, upstreams by kind, tag) -> Running
Starter = Callable[[h.Processes, Path, Mapping[str, str], str], Running]


@dataclass(frozen=True)
class Gateway:
    name: str
    start: Starter
    # Whether one process can address all the upstreams at once (it is then started once
    # for the whole run of its target instead of once per upstream).
    multi: bool = False


def _post_headers(authorization: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {"Authorization": authorization, "Content-Type": "application/json", **(extra or {})}


def _chat_target(
    name: str, url: str, kind: str, headers: Mapping[str, str], model: str = h.UPSTREAM_MODEL
) -> h.Target:
    return h.Target(name, url, h.chat_body(model, kind != "json"), headers)


def _only(upstreams: Mapping[str, str]) -> str:
    if len(upstreams) != 1:
        raise ValueError("this gateway is started with one upstream at a time")
    return next(iter(upstreams.values()))


def direct_target(upstreams: Mapping[str, str]) -> Callable[[str], h.Target]:
    headers = _post_headers(f"Bearer {h.SIM_API_KEY}")

    def target(kind: str) -> h.Target:
        return _chat_target("direct", f"{upstreams[kind]}/v1/chat/completions", kind, headers)

    return target


def start_nginx(
    procs: h.Processes, workdir: Path, upstreams: Mapping[str, str], tag: str
) -> Running:
    root = workdir / f"nginx-{tag}"
    (root / "tmp").mkdir(parents=True)
    port = h.free_port()
    server = f"""  upstream backend {{
    server {_only(upstreams).removeprefix("http://")};
    keepalive 256;
  }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 300s;
    }}
  }}"""
    conf = root / "nginx.conf"
    conf.write_text(_nginx_conf(root, server), "utf-8")
    started = time.monotonic()
    child = procs.start(f"nginx-{tag}", _nginx_argv(root, conf), h.SERVER_CPU)
    base = f"http://127.0.0.1:{port}"
    wait_http(child, f"{base}/v1/models")
    headers = _post_headers(f"Bearer {h.SIM_API_KEY}")

    def target(kind: str) -> h.Target:
        return _chat_target("nginx", f"{base}/v1/chat/completions", kind, headers)

    return Running("nginx", child, target, time.monotonic() - started)


def switchyard_starter(local_model: bool = False) -> Starter:
    """Switchyard with the `openai` provider pointed at the upstream. Unless `local_model`,
    the bundled local models (the llama.cpp chat model and the E5 embeddings model, both
    loaded at start-up by default) are switched off with `[local] enabled = false` and
    `[providers.local-embeddings] enabled = false`: none of the peers loads a model, and
    neither is on the path of these requests."""

    def start(procs: h.Processes, workdir: Path, upstreams: Mapping[str, str], tag: str) -> Running:
        data = workdir / f"switchyard-{tag}"
        api_key = h.prepare_data_dir(data, _only(upstreams))
        if not local_model:
            with (data / "switchyard.toml").open("a", encoding="utf-8") as config:
                config.write(h.NO_LOCAL_MODELS)
        port = h.free_port()
        argv = [*h.switchyard_command(data, port), "--log-level", "warning"]
        started = time.monotonic()
        child = procs.start(f"switchyard-{tag}", argv, h.SERVER_CPU)
        base = f"http://127.0.0.1:{port}"
        h.wait_switchyard(child, base)

        def target(kind: str) -> h.Target:
            return h.gateway_target(base, api_key, kind != "json")

        return Running("switchyard", child, target, time.monotonic() - started)

    return start


def default_switchyard_idle_rss(procs: h.Processes, workdir: Path, upstream: str) -> str:
    """Idle RSS of Switchyard with its default config (bundled local model on), for a note."""
    try:
        start = switchyard_starter(local_model=True)
        running = start(procs, workdir, {"json": upstream}, "default")
    except (RuntimeError, OSError) as exc:
        return f"could not start Switchyard with its default config: {first_line(exc)}"
    try:
        time.sleep(2.0)
        rss = h.tree_rss_bytes(running.child.pid)
    finally:
        procs.stop(running.child)
    return (
        "Switchyard's bundled local models are switched off (`[local] enabled = false`, "
        "`[providers.local-embeddings] enabled = false`) in every Switchyard run above; with "
        f"the default config (both loaded at start-up) its idle RSS is {mb(rss)} MB"
    )


def litellm_starter(install: Install) -> Starter:
    """LiteLLM's proxy with one model per upstream (`openai/<model>` with that `api_base`).
    It takes about 20 s to start here, so one process serves all of its cases."""
    assert install.path is not None
    exe = install.path / "bin" / "litellm"

    def alias(kind: str) -> str:
        return h.UPSTREAM_MODEL if kind == "json" else f"{h.UPSTREAM_MODEL}-{kind}"

    def start(procs: h.Processes, workdir: Path, upstreams: Mapping[str, str], tag: str) -> Running:
        config = workdir / f"litellm-{tag}.yaml"
        # JSON is valid YAML.
        spec = {
            "model_list": [
                {
                    "model_name": alias(kind),
                    "litellm_params": {
                        "model": f"openai/{h.UPSTREAM_MODEL}",
                        "api_base": f"{url}/v1",
                        "api_key": h.SIM_API_KEY,
                    },
                }
                for kind, url in upstreams.items()
            ],
            "general_settings": {"master_key": LITELLM_MASTER_KEY},
        }
        config.write_text(json.dumps(spec, indent=2), "utf-8")
        port = h.free_port()
        argv = [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--num_workers", "1"]
        env = {
            # Log level of LiteLLM and of its uvicorn (no access log), like Switchyard's.
            "LITELLM_LOG": "WARNING",
            # Use the bundled model price list instead of fetching it from GitHub.
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "NO_COLOR": "1",
        }
        started = time.monotonic()
        child = procs.start(f"litellm-{tag}", argv, h.SERVER_CPU, env)
        base = f"http://127.0.0.1:{port}"
        h.wait_ready(child, f"{base}/health/liveliness", timeout=180)
        headers = _post_headers(f"Bearer {LITELLM_MASTER_KEY}")

        def target(kind: str) -> h.Target:
            url = f"{base}/v1/chat/completions"
            return _chat_target("litellm", url, kind, headers, alias(kind))

        return Running("litellm", child, target, time.monotonic() - started)

    return start


def portkey_starter(install: Install) -> Starter:
    assert install.path is not None
    entry = install.path

    def start(procs: h.Processes, workdir: Path, upstreams: Mapping[str, str], tag: str) -> Running:
        upstream = _only(upstreams)
        port = h.free_port()
        argv = ["node", str(entry), f"--port={port}", "--headless"]
        started = time.monotonic()
        child = procs.start(f"portkey-{tag}", argv, h.SERVER_CPU, {"NODE_ENV": "production"})
        base = f"http://127.0.0.1:{port}"
        h.wait_ready(child, f"{base}/", timeout=60)
        headers = _post_headers(
            f"Bearer {h.SIM_API_KEY}",
            {"x-portkey-provider": "openai", "x-portkey-custom-host": f"{upstream}/v1"},
        )

        def target(kind: str) -> h.Target:
            return _chat_target("portkey", f"{base}/v1/chat/completions", kind, headers)

        return Running("portkey", child, target, time.monotonic() - started)

    return start


# -- throughput and latency ----------------------------------------------------------------


@dataclass
class Case:
    target: str
    stream: bool
    concurrency: int
    result: h.LoadResult | None = None
    upstream_cpu_s: float | None = None
    error: str | None = None

    @property
    def mode(self) -> str:
        return "streaming" if self.stream else "non-streaming"

    @property
    def upstream_cpu_share(self) -> float | None:
        if self.result is None or self.upstream_cpu_s is None or not self.result.duration_s:
            return None
        return self.upstream_cpu_s / self.result.duration_s


@dataclass
class TargetRun:
    name: str
    version: str = ""
    status: str = "not run"
    # Per mode ("non-streaming", "streaming"), for the process that served it (a `multi`
    # gateway has one process, recorded under "non-streaming").
    started_in: dict[str, float] = field(default_factory=dict)
    rss_idle: dict[str, int] = field(default_factory=dict)
    rss_after: dict[str, int] = field(default_factory=dict)
    frames: int | None = None
    cases: list[Case] = field(default_factory=list)


def check_target(target: h.Target, stream: bool, tries: int = 10) -> int:
    """One good request (retrying briefly, e.g. just after an upstream reload)."""
    for attempt in range(tries):
        try:
            return h.check_target(target, stream)
        except (OSError, RuntimeError, ValueError):
            if attempt == tries - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def measure_case(
    case: Case,
    target: h.Target,
    args: argparse.Namespace,
    tool: str,
    server_pid: int | None,
    upstream_pid: int,
    gate: h.QuietGate,
) -> None:
    try:
        gate.wait()
        if args.warmup > 0:
            h.run_load(target, case.concurrency, args.warmup, tool)
        while True:
            before = h.tree_cpu_seconds(upstream_pid)
            ticks = process_ticks()
            result = h.run_load(target, case.concurrency, args.duration, tool, server_pid)
            busy = h.busy_shares(ticks, process_ticks())
            case.upstream_cpu_s = h.tree_cpu_seconds(upstream_pid) - before
            # CPU busy shares without interrupt time: a gateway's loopback traffic makes
            # softirq work on its CPU that no process is charged for (much of it for nginx
            # at 15,000 req/s), which must not count as someone else's load.
            result = dataclasses.replace(
                result, cpu_busy=(busy.get(h.SERVER_CPU, math.nan), busy.get(h.LOAD_CPU, math.nan))
            )
            case.result = result
            # Direct runs nothing on CPU 0, so other load there does not disturb it.
            if server_pid is None or not gate.retry(result):
                break
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        case.error = first_line(exc)
    r = case.result
    if r is not None:
        print(
            f"  {case.mode:<13} c={case.concurrency:<3} {r.rps:9.0f} req/s  p50 {r.p50_ms:8.2f} ms"
            f"  p99 {r.p99_ms:8.2f} ms  errors {r.errors}"
            + (
                f"  CPU {r.server_cpu_ms_per_request:.3f} s/1000 req"
                if r.server_cpu_ms_per_request is not None
                else ""
            )
        )
    else:
        print(f"  {case.mode:<13} c={case.concurrency:<3} failed: {case.error}")


def process_ticks() -> dict[int, tuple[int, int]]:
    """Per CPU: (ticks spent running processes, total ticks), from /proc/stat; unlike
    h.cpu_ticks, interrupt and softirq time count as neither busy nor idle."""
    ticks: dict[int, tuple[int, int]] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            name, *values = line.split()
            if not (name.startswith("cpu") and name[3:].isdigit()):
                continue
            user, nice, system, idle, iowait, _irq, _softirq, steal = (int(v) for v in values[:8])
            ticks[int(name[3:])] = (
                user + nice + system + steal,
                user + nice + system + steal + idle + iowait,
            )
    return ticks


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else repr(exc)


# -- many concurrent slow streams ----------------------------------------------------------


@dataclass
class StreamsRun:
    name: str
    status: str = "not run"
    # Whether the gateway process is the one that served the load cases before.
    same_process: bool = False
    # Whether opening streams stopped making progress before the ramp's time was up.
    stalled: bool = False
    requested: int = 0
    opened: int = 0
    peak_open: int = 0
    open_at_end: int = 0
    ramp_s: float | None = None
    hold_s: float = 0.0
    frames_in_hold: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    rss_idle: int | None = None
    rss_all_open: int | None = None
    rss_peak: int | None = None
    rss_after_close: int | None = None
    cpu_hold_s: float | None = None
    upstream_left_open: int | None = None
    upstream_drain_s: float | None = None

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


async def hold_streams(
    target: h.Target, count_total: int, ramp: float, hold: float, pid: int, out: StreamsRun
) -> None:
    """Open `count_total` streams (at most 100 being set up at a time), wait until all are open
    or `ramp` seconds passed, keep them open `hold` seconds reading frames, then close them.
    A stream that fails to open, breaks or ends before the close is an error."""
    import aiohttp

    errors: dict[str, int] = {}
    state = {"open": 0, "peak": 0, "opened": 0, "failed": 0, "frames": 0, "rss_peak": 0}
    closing = asyncio.Event()
    settled = asyncio.Event()  # every stream is open or has failed to open
    setup = asyncio.Semaphore(100)

    def fail(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    def count(key: str) -> None:
        state[key] += 1
        if state["opened"] + state["failed"] >= count_total:
            settled.set()

    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:

        async def one() -> None:
            response: aiohttp.ClientResponse | None = None
            opened = False
            try:
                async with setup:
                    response = await session.post(
                        target.url, data=target.body, headers=dict(target.headers)
                    )
                if response.status != 200:
                    count("failed")
                    fail(f"HTTP {response.status}")
                    return
                opened = True
                count("opened")
                state["open"] += 1
                state["peak"] = max(state["peak"], state["open"])
                done = False
                async for line in response.content:
                    if line.startswith(b"data:"):
                        state["frames"] += 1
                        done = done or line.strip() == b"data: [DONE]"
                fail("completed before the close" if done else "ended early")
            except asyncio.CancelledError:
                if not closing.is_set():
                    raise
                if not opened:
                    fail("not open when the hold ended")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if not opened:
                    count("failed")
                    fail(f"open: {type(exc).__name__}")
                elif not closing.is_set():
                    fail(f"read: {type(exc).__name__}")
            finally:
                if opened:
                    state["open"] -= 1
                if response is not None:
                    response.close()

        async def sample_rss() -> None:
            while True:
                rss = await asyncio.to_thread(h.tree_rss_bytes, pid)
                state["rss_peak"] = max(state["rss_peak"], rss)
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample_rss())
        started = time.monotonic()
        tasks = [asyncio.create_task(one()) for _ in range(count_total)]
        # The ramp ends when every stream is open (or failed), when none has opened for
        # STALL seconds (the gateway holds the rest back), or after `ramp` seconds.
        progress, progress_at = -1, started
        while not settled.is_set() and time.monotonic() - started < ramp:
            if state["opened"] + state["failed"] != progress:
                progress, progress_at = state["opened"] + state["failed"], time.monotonic()
            elif time.monotonic() - progress_at > STALL:
                out.stalled = True
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled.wait(), 0.25)
        out.ramp_s = time.monotonic() - started
        out.rss_all_open = await asyncio.to_thread(h.tree_rss_bytes, pid)
        cpu_before = await asyncio.to_thread(h.tree_cpu_seconds, pid)
        frames_before = state["frames"]
        hold_started = time.monotonic()
        await asyncio.sleep(hold)
        out.hold_s = time.monotonic() - hold_started
        out.cpu_hold_s = await asyncio.to_thread(h.tree_cpu_seconds, pid) - cpu_before
        out.frames_in_hold = state["frames"] - frames_before
        out.open_at_end = state["open"]
        closing.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    out.opened = state["opened"]
    out.peak_open = state["peak"]
    out.rss_peak = max(state["rss_peak"], out.rss_all_open or 0)
    out.errors = errors


def start_slow_upstream(procs: h.Processes, args: argparse.Namespace) -> str:
    """The simulator, its streams long enough to outlast the ramp and the hold."""
    seconds = args.ramp + args.hold + 30
    chunks = max(h.STREAM_CHUNKS, math.ceil(seconds * 1000 / args.frame_gap_ms))
    base = h.start_simulator(procs, chunks=chunks)
    fault = {"faults": [{"kind": "slow_tokens", "ms": args.frame_gap_ms}], "sticky": True}
    status, payload = h.http_request(
        f"{base}/__sim/faults", json.dumps(fault).encode(), {"Content-Type": "application/json"}
    )
    if status != 200:
        raise RuntimeError(f"could not set the slow_tokens fault: HTTP {status} {payload[:200]!r}")
    return base


def sim_active_streams(sim_base: str) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        status, payload = h.http_request(f"{sim_base}/__sim/stats", timeout=5)
        if status == 200:
            return int(json.loads(payload)["active_streams"])
    return None


def _start(
    gateway: Gateway,
    procs: h.Processes,
    workdir: Path,
    upstreams: Mapping[str, str],
    tag: str,
    settle: float,
) -> tuple[Running, int]:
    """Start a gateway, let start-up work settle, and read its idle RSS."""
    running = gateway.start(procs, workdir, upstreams, tag)
    time.sleep(settle)
    return running, h.tree_rss_bytes(running.child.pid)


def load_phase(
    run: TargetRun,
    gateway: Gateway | None,
    shared: Running | None,
    procs: h.Processes,
    workdir: Path,
    upstreams: Mapping[str, str],
    upstream_pid: int,
    stream: bool,
    args: argparse.Namespace,
    tool: str,
    gate: h.QuietGate,
) -> None:
    """The load cases of one mode (non-streaming or streaming) for one target."""
    mode = "streaming" if stream else "non-streaming"
    kind = "sse" if stream else "json"
    running = shared
    try:
        server_pid: int | None = None
        if gateway is None:
            target = direct_target(upstreams)(kind)
        else:
            if running is None:
                try:
                    running, rss = _start(
                        gateway, procs, workdir, {kind: upstreams[kind]}, kind, args.settle
                    )
                except (RuntimeError, OSError) as exc:
                    run.status = f"could not start: {first_line(exc)}"
                    run.cases += [
                        Case(run.name, stream, c, error=run.status) for c in args.concurrency
                    ]
                    print(f"  {mode}: {run.status}")
                    return
                run.started_in[mode] = running.started_in
                run.rss_idle[mode] = rss
            target = running.target(kind)
            server_pid = running.child.pid
        try:
            frames = check_target(target, stream)
        except (OSError, RuntimeError, ValueError) as exc:
            message = f"check failed: {first_line(exc)}"
            run.cases += [Case(run.name, stream, c, error=message) for c in args.concurrency]
            print(f"  {mode}: {message}")
            return
        if stream:
            run.frames = frames
        for concurrency in args.concurrency:
            case = Case(run.name, stream, concurrency)
            measure_case(case, target, args, tool, server_pid, upstream_pid, gate)
            run.cases.append(case)
        if running is not None:
            run.rss_after[mode] = h.tree_rss_bytes(running.child.pid)
            if running.child.process.poll() is not None:
                run.status = f"exited during the {mode} cases: {running.child.log_tail(5)}"
    finally:
        if running is not None and running is not shared:
            procs.stop(running.child)


def streams_phase(
    name: str,
    gateway: Gateway,
    shared: Running | None,
    procs: h.Processes,
    workdir: Path,
    sim_base: str,
    args: argparse.Namespace,
    gate: h.QuietGate,
) -> StreamsRun:
    """Many concurrent slow streams through one gateway."""
    print(f"  {args.streams} slow streams held {args.hold:g} s:")
    out = StreamsRun(name, requested=args.streams, same_process=shared is not None)
    running = shared
    try:
        if running is None:
            try:
                upstream = {"slow": sim_base}
                running, out.rss_idle = _start(
                    gateway, procs, workdir, upstream, "slow", args.settle
                )
            except (RuntimeError, OSError) as exc:
                out.status = f"could not start: {first_line(exc)}"
                print(f"    {out.status}")
                return out
        else:
            out.rss_idle = h.tree_rss_bytes(running.child.pid)
        pid = running.child.pid
        gate.wait()
        target = running.target("slow")
        _run_async(hold_streams(target, args.streams, args.ramp, args.hold, pid, out))
        # How quickly the gateway let go of the upstream streams after the clients left.
        started = time.monotonic()
        left = sim_active_streams(sim_base)
        while left and time.monotonic() - started < args.drain:
            time.sleep(0.25)
            left = sim_active_streams(sim_base)
        out.upstream_left_open = left
        out.upstream_drain_s = time.monotonic() - started if left == 0 else None
        out.rss_after_close = h.tree_rss_bytes(pid)
        out.status = "measured"
        if running.child.process.poll() is not None:
            out.status = f"exited during the test: {running.child.log_tail(5)}"
    finally:
        if running is not None and running is not shared:
            procs.stop(running.child)
    print(
        f"    opened {out.opened}/{out.requested} (peak {out.peak_open}) in "
        f"{out.ramp_s or 0:.1f} s, open at the end {out.open_at_end}, errors "
        f"{out.error_count} {out.errors or ''}, RSS before {mb(out.rss_idle)} MB, peak "
        f"{mb(out.rss_peak)} MB"
    )
    return out


def run_target(
    name: str,
    gateway: Gateway | None,
    procs: h.Processes,
    workdir: Path,
    upstreams: Mapping[str, str],
    upstream_pid: int,
    args: argparse.Namespace,
    tool: str,
    gate: h.QuietGate,
) -> tuple[TargetRun, StreamsRun | None]:
    """Everything measured for one target: the non-streaming cases, the streaming cases,
    then the slow streams. Each phase gets a fresh gateway process pointed at that phase's
    upstream, except for a `multi` gateway, which one process serves throughout."""
    print(f"{LABELS[name]}:")
    run = TargetRun(name, status="measured")
    shared: Running | None = None
    try:
        if gateway is not None and gateway.multi:
            try:
                shared, rss = _start(gateway, procs, workdir, upstreams, "all", args.settle)
            except (RuntimeError, OSError) as exc:
                run.status = f"could not start: {first_line(exc)}"
                print(f"  {run.status}")
                return run, StreamsRun(name, status=run.status)
            run.started_in["non-streaming"] = shared.started_in
            run.rss_idle["non-streaming"] = rss
        for stream in (False, True):
            load_phase(
                run, gateway, shared, procs, workdir, upstreams, upstream_pid, stream, args,
                tool, gate,
            )  # fmt: skip
        if gateway is None or "slow" not in upstreams:
            return run, None
        sim_base = upstreams["slow"]
        streams = streams_phase(name, gateway, shared, procs, workdir, sim_base, args, gate)
        return run, streams
    finally:
        if shared is not None:
            procs.stop(shared.child)
        # Upstream streams a gateway left open end when it stops; wait for them.
        if "slow" in upstreams:
            deadline = time.monotonic() + args.drain
            while (sim_active_streams(upstreams["slow"]) or 0) > 0 and time.monotonic() < deadline:
                time.sleep(0.25)


# -- report --------------------------------------------------------------------------------


def mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.0f}"


def raise_fd_limit() -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, max(hard, FD_LIMIT)))
    with contextlib.suppress(ValueError, OSError):
        if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < FD_LIMIT:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    new = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return f"open files limit {new} (was {soft}; inherited by every server)"


def find_case(runs: Mapping[str, TargetRun], name: str, stream: bool, c: int) -> Case | None:
    run = runs.get(name)
    if run is None:
        return None
    for case in run.cases:
        if case.stream == stream and case.concurrency == c and case.result is not None:
            return case
    return None


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**PASS**" if ok else "**FAIL**")


def targets_table(runs: Mapping[str, TargetRun], streams: Mapping[str, StreamsRun]) -> str:
    rows: list[list[object]] = []

    def rps(name: str, stream: bool, c: int) -> float | None:
        case = find_case(runs, name, stream, c)
        return case.result.rps if case and case.result else None

    def ratio_row(label: str, stream: bool, peer: str, goal: float) -> None:
        mine, theirs = rps("switchyard", stream, 32), rps(peer, stream, 32)
        if mine and theirs == 0:
            rows.append(
                [label, f">= {goal:g}x", f"{LABELS[peer]} completed no request", verdict(True)]
            )
            return
        if mine is None or theirs is None or not theirs:
            rows.append([label, f">= {goal:g}x", f"not measured ({LABELS[peer]} missing)", "n/a"])
            return
        ratio = mine / theirs
        rows.append(
            [
                label,
                f">= {goal:g}x",
                f"{ratio:.2f}x ({mine:.0f} vs {theirs:.0f} req/s)",
                verdict(ratio >= goal),
            ]
        )

    ratio_row("non-streaming c=32 throughput, Switchyard / Portkey", False, "portkey", 5)
    ratio_row("non-streaming c=32 throughput, Switchyard / LiteLLM", False, "litellm", 50)

    sy1, d1 = find_case(runs, "switchyard", False, 1), find_case(runs, "direct", False, 1)
    if sy1 and d1 and sy1.result and d1.result:
        added = sy1.result.p50_ms - d1.result.p50_ms
        rows.append(
            [
                "added p50 latency at c=1 (non-streaming), Switchyard - direct",
                "<= 0.25 ms",
                f"{added:.3f} ms ({d1.result.p50_ms:.3f} → {sy1.result.p50_ms:.3f} ms)",
                verdict(added <= 0.25),
            ]
        )
    else:
        rows.append(["added p50 latency at c=1", "<= 0.25 ms", "not measured", "n/a"])

    sy, ng, d = (find_case(runs, n, False, 32) for n in ("switchyard", "nginx", "direct"))
    if sy and ng and d and sy.result and ng.result and d.result:
        sy_added = sy.result.p99_ms - d.result.p99_ms
        ng_added = ng.result.p99_ms - d.result.p99_ms
        # nginx may add (nearly) nothing measurable; compare against at least 0.01 ms.
        ratio = sy_added / max(ng_added, 0.01)
        rows.append(
            [
                "added p99 latency at c=32 (non-streaming), Switchyard vs nginx",
                "<= 3x nginx's",
                f"{ratio:.1f}x (Switchyard +{sy_added:.2f} ms, nginx {ng_added:+.2f} ms; "
                f"p99 {sy.result.p99_ms:.2f} vs {ng.result.p99_ms:.2f} ms)",
                verdict(ratio <= 3),
            ]
        )
    else:
        rows.append(["added p99 latency at c=32 vs nginx", "<= 3x nginx's", "not measured", "n/a"])

    ratio_row("streaming c=32 throughput, Switchyard / Portkey", True, "portkey", 3)

    s = streams.get("switchyard")
    if s is not None and s.status == "measured" and s.rss_peak is not None:
        ok = s.rss_peak < 200e6 and s.error_count == 0 and s.opened == s.requested
        rows.append(
            [
                f"{s.requested:,} concurrent streams through Switchyard",
                "peak RSS < 200 MB, no errors",
                f"peak RSS {mb(s.rss_peak)} MB, {s.opened}/{s.requested} opened, "
                f"{s.error_count} errors",
                verdict(ok),
            ]
        )
    else:
        rows.append(["1,000 concurrent streams", "< 200 MB, no errors", "not measured", "n/a"])
    return h.md_table(["criterion", "target", "measured", "result"], rows, numeric=False)


def throughput_tables(runs: Mapping[str, TargetRun], args: argparse.Namespace) -> list[str]:
    sections: list[str] = []
    for stream in (False, True):
        rows: list[list[object]] = []
        for c in args.concurrency:
            direct = find_case(runs, "direct", stream, c)
            for name in TARGETS:
                run = runs.get(name)
                if run is None:
                    continue
                case = next(
                    (k for k in run.cases if k.stream == stream and k.concurrency == c), None
                )
                if case is None or case.result is None:
                    why = case.error if case and case.error else run.status
                    rows.append([c, LABELS[name], "—", "—", "—", "—", "—", "—", "—", "—", why])
                    continue
                r = case.result
                if not r.requests:
                    rows.append(
                        [c, LABELS[name], "0", "—", "—", "—", "—", "—", "—", "—",
                         f"{r.errors}; no request completed in {r.duration_s:.0f} s"]
                    )  # fmt: skip
                    continue
                added50 = added99 = "—"
                if name != "direct" and direct and direct.result:
                    added50 = f"{r.p50_ms - direct.result.p50_ms:+.2f}"
                    added99 = f"{r.p99_ms - direct.result.p99_ms:+.2f}"
                upstream = case.upstream_cpu_share
                rows.append(
                    [
                        c,
                        LABELS[name],
                        f"{r.rps:.0f}",
                        f"{r.p50_ms:.2f}",
                        f"{r.p90_ms:.2f}",
                        f"{r.p99_ms:.2f}",
                        added50,
                        added99,
                        h.fmt(r.server_cpu_ms_per_request, 3),
                        h.fmt(None if upstream is None else 100 * upstream, 0),
                        f"{r.errors}"
                        + (
                            " (noisy)"
                            if name != "direct" and (h.foreign_load(r) or 0) > h.NOISY_LOAD
                            else ""
                        ),
                    ]
                )
        title = (
            f"### Streaming ({h.STREAM_CHUNKS} content chunks, {h.STREAM_CHUNKS + 4} SSE "
            "frames; latency to the last byte)"
            if stream
            else "### Non-streaming"
        )
        sections += [
            title,
            h.md_table(
                [
                    "c",
                    "target",
                    "req/s",
                    "p50 ms",
                    "p90 ms",
                    "p99 ms",
                    "added p50 ms",
                    "added p99 ms",
                    "CPU s / 1000 req",
                    "upstream CPU %",
                    "errors",
                ],
                rows,
            ),
        ]
    return sections


def headroom_table(runs: Mapping[str, TargetRun], args: argparse.Namespace) -> str:
    rows: list[list[object]] = []
    for stream in (False, True):
        for c in args.concurrency:
            direct = find_case(runs, "direct", stream, c)
            if direct is None or direct.result is None:
                continue
            cells: list[object] = ["streaming" if stream else "non-streaming", c]
            cells.append(f"{direct.result.rps:.0f}")
            for name in GATEWAYS:
                case = find_case(runs, name, stream, c)
                if case is None or case.result is None or not case.result.rps:
                    cells.append("—")
                else:
                    cells.append(f"{direct.result.rps / case.result.rps:.1f}x")
            rows.append(cells)
    return h.md_table(["case", "c", "direct req/s", *(LABELS[n] for n in GATEWAYS)], rows)


def memory_table(runs: Mapping[str, TargetRun]) -> str:
    rows = []
    for name in GATEWAYS:
        run = runs.get(name)
        if run is None:
            continue
        one_process = "non-streaming" in run.rss_idle and "streaming" not in run.rss_idle
        rows.append(
            [
                LABELS[name],
                run.status.splitlines()[0] if run.status else "",
                h.fmt(run.started_in.get("non-streaming"), 1),
                mb(run.rss_idle.get("non-streaming")),
                mb(run.rss_after.get("non-streaming")),
                "same process" if one_process else mb(run.rss_idle.get("streaming")),
                mb(run.rss_after.get("streaming")),
            ]
        )
    return h.md_table(
        [
            "target",
            "status",
            "start-up s",
            "RSS idle MB",
            "RSS after non-streaming cases MB",
            "RSS idle, streaming process MB",
            "RSS after streaming cases MB",
        ],
        rows,
    )


def streams_table(streams: Mapping[str, StreamsRun], drain: float) -> str:
    rows = []
    for name in GATEWAYS:
        s = streams.get(name)
        if s is None:
            continue
        if s.status != "measured":
            rows.append([LABELS[name], s.status.splitlines()[0], *["—"] * 9])
            continue
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(s.errors.items())) or "0"
        per_stream = "—"
        if s.opened and s.rss_peak is not None and s.rss_idle is not None:
            per_stream = f"{(s.rss_peak - s.rss_idle) / s.opened / 1024:.0f}"
        upstream_left = (
            f"0 after {s.upstream_drain_s:.1f} s"
            if s.upstream_drain_s is not None
            else f"{s.upstream_left_open} still open after {drain:g} s"
        )
        rows.append(
            [
                LABELS[name],
                f"{s.opened}/{s.requested}",
                s.peak_open,
                h.fmt(s.ramp_s, 1) + (" (stalled)" if s.stalled else ""),
                s.open_at_end,
                errors,
                f"{s.frames_in_hold / s.hold_s:.0f}" if s.hold_s else "—",
                h.fmt(None if s.cpu_hold_s is None else 100 * s.cpu_hold_s / s.hold_s, 0),
                f"{mb(s.rss_idle)} → {mb(s.rss_peak)} (after close {mb(s.rss_after_close)})"
                + (" ¹" if s.same_process else ""),
                per_stream,
                upstream_left,
            ]
        )
    return h.md_table(
        [
            "gateway",
            "opened",
            "peak open",
            "ramp s",
            "open at end of hold",
            "errors",
            "frames/s relayed in hold",
            "CPU % in hold",
            "RSS MB before → peak",
            "KiB per stream",
            "upstream streams after the clients left",
        ],
        rows,
    )


def report(
    args: argparse.Namespace,
    tool: str,
    gate: h.QuietGate,
    installs: Mapping[str, Install],
    runs: Mapping[str, TargetRun],
    streams: Mapping[str, StreamsRun],
    notes: Sequence[str],
    took: float,
) -> str:
    sy_version = h.package_version("switchyard")
    versions = [
        ("nginx (upstream and proxy)", installs["nginx"].version),
        ("Switchyard", f"{sy_version}, source {h.switchyard_source()}"),
        ("LiteLLM", installs["litellm"].version if installs["litellm"].ok else "not available"),
        ("Portkey gateway", installs["portkey"].version if installs["portkey"].ok else "n/a"),
        ("wrk", installs["wrk"].version),
    ]
    install_rows = [
        (name, ("ok: " if i.ok else "NOT AVAILABLE: ") + i.note + f" ({i.seconds:.0f} s)")
        for name, i in installs.items()
    ]
    frames = ", ".join(f"{LABELS[n]} {r.frames}" for n, r in runs.items() if r.frames is not None)
    config = [
        ("mode", "quick" if args.quick else "full"),
        ("load generator", h.loadgen_note(tool, max(args.concurrency), args.duration)),
        ("duration per case", f"{args.warmup:g} s warm-up (discarded) + {args.duration:g} s"),
        ("concurrency", ", ".join(str(c) for c in args.concurrency)),
        ("CPU", h.pinning_note() + " (upstream nginx on CPU 1)"),
        (
            "upstream (fast)",
            "nginx, 1 worker, two ports serving canned OpenAI replies as static files (POST "
            "turned into 200 with `error_page 405 =200 $uri`): a chat.completion JSON "
            f"({len(_completion_body())} B) on one, and on the other, for the streaming "
            f"cases, {h.STREAM_CHUNKS + 4} SSE frames ({len(_stream_body())} B: role, "
            f"{h.STREAM_CHUNKS} content chunks, finish, usage, [DONE])",
        ),
        ("SSE frames received per streamed response", frames or "n/a"),
        (
            "gateway processes",
            "a fresh gateway process per phase (non-streaming cases, streaming cases, slow "
            "streams), each pointed at that phase's upstream, started on CPU 0 and stopped "
            "after the phase; except LiteLLM, which takes about 20 s to start here: one "
            "LiteLLM process, with one model name per upstream, serves all three phases",
        ),
        (
            "nginx proxy",
            "1 worker, `proxy_pass` to an upstream block with `keepalive 256`, HTTP/1.1, "
            "`proxy_buffering off`, no access log",
        ),
        (
            "Switchyard",
            "`switchyard serve --data-dir DIR --port P --log-level warning` (uvicorn, 1 "
            "worker); config points the `openai` provider at the upstream and sets "
            "`[local] enabled = false` and `[providers.local-embeddings] enabled = false` "
            "(the bundled chat and embeddings models); requests carry a Switchyard API key "
            "(created in the database as bench/_harness.py does) and model `openai/"
            + h.UPSTREAM_MODEL
            + "`: "
            "**API-key auth, routing (with its circuit breaker) and usage accounting "
            "(SQLite) are all on**",
        ),
        (
            "LiteLLM",
            "`litellm --config config.yaml --host 127.0.0.1 --port P --num_workers 1`, no "
            "database, a `master_key` (so auth is on, checked against the config), one "
            f"model per upstream, each `openai/{h.UPSTREAM_MODEL}` with `api_base` = that "
            "upstream; LITELLM_LOG=WARNING (no access log, like Switchyard's log level), "
            "LITELLM_LOCAL_MODEL_COST_MAP=True (no fetch of the price list); otherwise "
            "defaults",
        ),
        (
            "Portkey",
            "`node node_modules/@portkey-ai/gateway/build/start-server.js --port=P "
            "--headless`, NODE_ENV=production; requests carry `x-portkey-provider: openai`, "
            "`x-portkey-custom-host: http://127.0.0.1:UP/v1`, `Authorization: Bearer "
            f"{h.SIM_API_KEY}` (passed to the upstream; Portkey itself checks no key)",
        ),
        (
            "slow streams",
            f"{args.streams} streams through each gateway to `tests/simulators/openai_sim.py` "
            f"with a sticky `slow_tokens` fault of {args.frame_gap_ms:g} ms between frames "
            "(set with `POST /__sim/faults`, so no header has to pass the gateway; each "
            "stream would last longer than the test); a Python aiohttp client in the "
            "benchmark process (CPU 1) opens them (at most 100 being set up at a time, for "
            f"up to {args.ramp:g} s), holds them {args.hold:g} s reading frames, then closes "
            "them. Errors: failed opens, streams that broke or ended before the close, "
            "streams not yet open when the hold ended",
        ),
        (
            "memory",
            "RSS = sum of VmRSS over the gateway's process tree (/proc); *idle* "
            f"{args.settle:g} s after start-up; *after* at the end of a phase's cases; in the "
            "streams test, sampled every 0.5 s (peak)",
        ),
        (
            "CPU per 1,000 requests",
            "user+system CPU seconds of the gateway's process tree over the measured "
            "interval (warm-up excluded) per 1,000 completed requests; for *direct*, n/a. "
            "*upstream CPU %* is the upstream nginx's share of one core meanwhile",
        ),
        ("quiet machine", gate.note()),
        ("wall time of the run", f"{took:.0f} s"),
    ]
    sections = [
        "# Switchyard and its peers",
        "Generated by `bench/peers.py`"
        + (" in `--quick` mode" if args.quick else "")
        + ". One run on the machine below; every figure comes from that run. All traffic "
        "stays on 127.0.0.1. Latencies are end to end per request (whole body, or whole "
        "stream). *Added* latency = the target's percentile minus the direct percentile "
        "of the same case. The gateway under test runs alone on CPU 0; the upstream and "
        "wrk share CPU 1.",
        "## Targets from the issue",
        targets_table(runs, streams),
        "Every Switchyard figure here is one process on one core. One against two worker "
        "processes (sharing state through Redis) is measured by `bench/workers.py`, in "
        "`workers.md`.",
        "## Throughput and latency",
        "*CPU s / 1000 req*: the gateway's CPU seconds per 1,000 requests (= ms per request). "
        "*upstream CPU %*: the upstream nginx's share of CPU 1 meanwhile. *(noisy)*: other "
        f"processes used more than {100 * h.NOISY_LOAD:.0f} % of CPU 0 during the measurement "
        "(repeated up to 3 times in a full run; the machine is shared).",
        *throughput_tables(runs, args),
        "![req/s per target and case](peers.png)",
        "## The upstream is not the bottleneck",
        "Direct req/s divided by each gateway's req/s in the same case (how many times "
        "faster the bare upstream is). *Direct* is itself limited by CPU 1, which runs "
        "both the upstream and wrk; the *upstream CPU %* column above shows how much of "
        "CPU 1 the upstream needed while each gateway was measured.",
        headroom_table(runs, args),
        "## Memory",
        memory_table(runs),
        f"## {args.streams:,} concurrent slow streams",
        streams_table(streams, args.drain),
        "¹ LiteLLM: the same process that served the load cases before (see "
        "*Configuration*); the others: a fresh process. *KiB per stream* = (peak - before) "
        "/ opened. The last "
        "column is the simulator's count of streams still open after the clients closed "
        "theirs: a gateway should cancel the upstream request when its client goes away.",
        "## Notes",
        "\n".join(f"- {n}" for n in notes) or "- none",
        "## Versions",
        h.kv_table(versions),
        "## Installation of the peers",
        h.kv_table(install_rows),
        "## Configuration",
        h.kv_table(config),
        "## Machine",
        h.kv_table(h.machine_info()),
    ]
    return "\n\n".join(sections) + "\n"


def results_json(
    runs: Mapping[str, TargetRun], streams: Mapping[str, StreamsRun], args: argparse.Namespace
) -> dict[str, Any]:
    cases = []
    for run in runs.values():
        for case in run.cases:
            r = case.result
            cases.append(
                {
                    "target": case.target,
                    "label": LABELS[case.target],
                    "stream": case.stream,
                    "concurrency": case.concurrency,
                    "error": case.error,
                    "rps": r.rps if r else None,
                    "p50_ms": r.p50_ms if r else None,
                    "p90_ms": r.p90_ms if r else None,
                    "p99_ms": r.p99_ms if r else None,
                    "errors": r.errors if r else None,
                    "cpu_s_per_1000": r.server_cpu_ms_per_request if r else None,
                    "upstream_cpu_share": case.upstream_cpu_share,
                }
            )
    return {
        "quick": args.quick,
        "targets": [n for n in TARGETS if n in runs],
        "labels": LABELS,
        "concurrency": args.concurrency,
        "cases": cases,
        "memory": {n: {"rss_idle": r.rss_idle, "rss_after": r.rss_after} for n, r in runs.items()},
        "streams": {
            n: {
                "status": s.status.splitlines()[0],
                "opened": s.opened,
                "requested": s.requested,
                "errors": s.errors,
                "rss_idle": s.rss_idle,
                "rss_peak": s.rss_peak,
            }
            for n, s in streams.items()
        },
    }


def draw_chart(plot: Install, data_path: Path, png: Path, notes: list[str]) -> None:
    if not plot.ok or plot.path is None:
        notes.append(f"no chart: matplotlib is not available ({plot.note})")
        return
    log = PEERS / "plot.log"
    python = plot.path / "bin" / "python"
    if run_bounded([str(python), str(PLOT_SCRIPT), str(data_path), str(png)], log, 120) == 0:
        print(f"wrote {png}")
    else:
        notes.append(f"the chart could not be drawn (see `{log.relative_to(h.ROOT)}`)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    h.exit_cleanly_on_signals()
    started = time.monotonic()
    notes = [raise_fd_limit()]
    PEERS.mkdir(parents=True, exist_ok=True)
    installer = Installer(allowed=not args.no_install)
    installs = {
        "nginx": installer.binary("nginx", "nginx"),
        "wrk": installer.binary("wrk", "wrk"),
    }
    if not installs["nginx"].ok:
        raise SystemExit(f"nginx is required for the upstream: {installs['nginx'].note}")
    tool = "wrk" if installs["wrk"].ok else "python"
    if tool == "python":
        notes.append("wrk is missing: the Python load generator was used (much less accurate)")
    wanted = set(args.targets)
    skipped = Install("", False, note="not selected (--targets)")
    installs["litellm"] = (
        installer.venv("litellm", "litellm[proxy]", "litellm", "litellm")
        if "litellm" in wanted
        else skipped
    )
    installs["portkey"] = installer.portkey() if "portkey" in wanted else skipped
    installs["matplotlib"] = installer.venv("plot", "matplotlib", "matplotlib", "python")
    installed_in = time.monotonic() - started

    gateways: dict[str, Gateway | None] = {
        "direct": None,
        "nginx": Gateway("nginx", start_nginx),
        "switchyard": Gateway("switchyard", switchyard_starter()),
    }
    if installs["litellm"].ok:
        gateways["litellm"] = Gateway("litellm", litellm_starter(installs["litellm"]), True)
    if installs["portkey"].ok:
        gateways["portkey"] = Gateway("portkey", portkey_starter(installs["portkey"]))

    h.pin_self(h.LOAD_CPU)
    # Quick mode does not repeat measurements disturbed by other load on CPU 0.
    gate = h.QuietGate(args.quiet_wait, retries=0 if args.quick else 3)
    runs: dict[str, TargetRun] = {}
    streams: dict[str, StreamsRun] = {}
    measure_started = time.monotonic()
    with h.workdir("switchyard-peers-") as tmp, h.Processes(tmp) as procs:
        upstream = CannedUpstream(procs, tmp)
        upstreams = {"json": upstream.base(False), "sse": upstream.base(True)}
        if args.hold > 0 and args.streams > 0:
            # Idle on CPU 1 until the slow-stream phases.
            upstreams["slow"] = start_slow_upstream(procs, args)
        else:
            notes.append("the concurrent-streams test was skipped (--hold 0 or --streams 0)")
        print(f"upstreams: {upstreams}")
        for name in TARGETS:
            if name not in wanted:
                continue
            if name in ("litellm", "portkey") and not installs[name].ok:
                status = f"not available: {installs[name].note}"
                runs[name] = TargetRun(name, status=status)
                streams[name] = StreamsRun(name, status=status)
                print(f"{LABELS[name]}: {status}")
                continue
            runs[name], stream_run = run_target(
                name, gateways[name], procs, tmp, upstreams, upstream.child.pid, args, tool, gate
            )
            if stream_run is not None:
                streams[name] = stream_run
            if name == "switchyard":
                notes.append(default_switchyard_idle_rss(procs, tmp, upstreams["json"]))
    took = time.monotonic() - started
    litellm_streams = streams.get("litellm")
    if litellm_streams is not None and litellm_streams.peak_open == 500:
        notes.append(
            "LiteLLM held exactly 500 streams open: its upstream aiohttp connector allows "
            "500 connections per host by default (`AIOHTTP_CONNECTOR_LIMIT_PER_HOST`, "
            "litellm/constants.py); further requests wait for a free connection. The "
            "benchmark keeps LiteLLM's defaults"
        )
    notes.append(
        f"peers checked or installed in {installed_in:.0f} s; measurements took "
        f"{time.monotonic() - measure_started:.0f} s"
    )
    if "portkey" in runs and runs["portkey"].cases:
        notes.append(
            "Portkey's stream relay (the SSE-splitting generator in its bundled "
            "`build/start-server.js`) sleeps 25 ms (`setTimeout(..., 25)`) before the first "
            "event of every stream: that alone keeps one connection under 40 streamed "
            "requests/s and is most of its added latency for streaming at c=1"
        )
    notes.append(
        "each target runs in turn (all of its cases, then the next target), so slow drift "
        "of the machine shows up between targets; compare ratios within this run"
    )

    args.output.parent.mkdir(parents=True, exist_ok=True)
    data_path = args.output.with_suffix(".json")
    data_path.write_text(json.dumps(results_json(runs, streams, args), indent=1), "utf-8")
    draw_chart(installs["matplotlib"], data_path, args.output.with_suffix(".png"), notes)
    h.write_report(args.output, report(args, tool, gate, installs, runs, streams, notes, took))
    return 0


if __name__ == "__main__":
    sys.exit(main())
