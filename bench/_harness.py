"""Shared plumbing for the benchmarks in this folder.

Starts the upstream simulator and Switchyard as subprocesses pinned to CPUs, waits for
them, drives load with wrk (or a small aiohttp load generator when wrk is missing), and
renders machine information and markdown tables. Everything here talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.metadata
import inspect
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
WRK_SCRIPT = BENCH / "wrk_post.lua"
BIN = Path(sys.executable).parent

SIM_API_KEY = "sk-sim-test"
# Config lines that switch off the bundled local models (the llama.cpp chat model and the
# E5 embeddings model, both loaded at start-up by default): the benchmarks never route to
# them, and none of the peers loads a model.
NO_LOCAL_MODELS = "\n[local]\nenabled = false\n\n[providers.local-embeddings]\nenabled = false\n"
UPSTREAM_MODEL = "gpt-4o-mini-2024-07-18"
GATEWAY_MODEL = f"openai/{UPSTREAM_MODEL}"
STREAM_CHUNKS = 20

# CPU assignment on a 2-core machine: the system under test gets CPU 0 to itself;
# the simulator and the load generator share CPU 1.
SERVER_CPU = 0
LOAD_CPU = 1

# A measurement is noisy when other processes used more than this share of CPU 0.
NOISY_LOAD = 0.10

PACKAGES = ("uvicorn", "starlette", "msgspec", "aiohttp", "uvloop", "httptools")


# -- CPU pinning ---------------------------------------------------------------------------


# The CPUs this process may use at start, before pin_self() narrows them.
_CPUS = frozenset(os.sched_getaffinity(0))


def pinning_enabled() -> bool:
    """Pin only when taskset exists and both benchmark CPUs are available."""
    return shutil.which("taskset") is not None and {SERVER_CPU, LOAD_CPU} <= _CPUS


def pinned(argv: Sequence[str], cpu: int) -> list[str]:
    if pinning_enabled():
        return ["taskset", "-c", str(cpu), *argv]
    return list(argv)


def pin_self(cpu: int) -> None:
    if pinning_enabled():
        os.sched_setaffinity(0, {cpu})


def pinning_note() -> str:
    if pinning_enabled():
        return (
            f"taskset: server under test on CPU {SERVER_CPU}; simulator and load generator "
            f"on CPU {LOAD_CPU}"
        )
    return "no CPU pinning (taskset missing or fewer than 2 CPUs): figures are noisier"


# -- subprocesses --------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: get SIGTERM if the benchmark itself dies (Linux)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _raise_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def exit_cleanly_on_signals() -> None:
    """Turn SIGTERM/SIGHUP into SystemExit so that `finally` blocks stop the subprocesses."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_on_signal)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "AZURE_OPENAI_", "SWITCHYARD_", "GRANIAN_"))
    }
    env.update(extra or {})
    return env


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Processes:
    """Owns the subprocesses of one benchmark run and stops all of them on exit.

    Each child leads its own process group (so a server's worker processes are stopped
    with it) and is asked to die with the benchmark process even on SIGKILL.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for child in reversed(self.children):
            self.stop(child)

    def start(
        self, name: str, argv: Sequence[str], cpu: int, env: Mapping[str, str] | None = None
    ) -> Child:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                pinned(argv, cpu),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
                env=clean_env(env),
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def stop(self, child: Child) -> None:
        if child in self.children:
            self.children.remove(child)
        if child.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, sig)
            try:
                child.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # The group may still hold workers of a server whose leader has exited.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_request(
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(child: Child, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
        with contextlib.suppress(OSError):
            if http_request(url, timeout=1.0)[0] == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{child.name} was not ready within {timeout:.0f} s:\n{child.log_tail()}")


# -- the simulator and Switchyard ----------------------------------------------------------


def start_simulator(procs: Processes, cpu: int = LOAD_CPU, chunks: int = STREAM_CHUNKS) -> str:
    """Start the OpenAI simulator; return its base URL (without /v1)."""
    port = free_port()
    child = procs.start(
        "openai-sim",
        [sys.executable, "-m", "tests.simulators.openai_sim", "--port", str(port)],
        cpu,
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(child, f"{base}/__sim/config", timeout=30)
    status, _ = http_request(
        f"{base}/__sim/config",
        json.dumps({"chunks": chunks}).encode(),
        {"Content-Type": "application/json"},
    )
    if status != 200:
        raise RuntimeError(f"could not configure the simulator (HTTP {status})")
    return base


def prepare_data_dir(data_dir: Path, sim_base: str) -> str:
    """Write a config pointing the openai provider at the simulator; return a new API key."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "switchyard.toml").write_text(
        f'[providers.openai]\napi_key = "{SIM_API_KEY}"\nbase_url = "{sim_base}/v1"\n', "utf-8"
    )
    return asyncio.run(_create_key(data_dir / "switchyard.db"))


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _create_key(db_path: Path) -> str:
    # Works whether the key store's methods are plain or coroutines.
    from switchyard.accounting.keys import KeyStore
    from switchyard.storage.sqlite import SQLiteDatabase

    db = SQLiteDatabase(db_path)
    db.connect_sync()
    try:
        store = KeyStore(db)
        await _maybe_await(store.ensure_account())
        secret, _ = await _maybe_await(store.create_key(name="bench"))
    finally:
        await _maybe_await(getattr(db, "close_sync", db.close)())
    return str(secret)


def switchyard_command(data_dir: Path, port: int) -> list[str]:
    script = BIN / "switchyard"
    prefix = [str(script)] if script.exists() else [sys.executable, "-m", "switchyard"]
    return [*prefix, "serve", "--data-dir", str(data_dir), "--port", str(port)]


def wait_switchyard(child: Child, base: str) -> None:
    wait_ready(child, f"{base}/health", timeout=60)


# -- requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One POST endpoint with its body and headers."""

    name: str
    url: str
    body: bytes
    headers: Mapping[str, str]


def chat_body(model: str, stream: bool) -> bytes:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello."}],
    }
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def direct_target(sim_base: str, stream: bool) -> Target:
    return Target(
        "direct",
        f"{sim_base}/v1/chat/completions",
        chat_body(UPSTREAM_MODEL, stream),
        {"Authorization": f"Bearer {SIM_API_KEY}", "Content-Type": "application/json"},
    )


def gateway_target(base: str, api_key: str, stream: bool, name: str = "switchyard") -> Target:
    return Target(
        name,
        f"{base}/api/v1/chat/completions",
        chat_body(GATEWAY_MODEL, stream),
        {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )


def check_target(target: Target, stream: bool) -> int:
    """Send one request and fail loudly unless it succeeds; return its SSE frame count."""
    status, payload = http_request(target.url, target.body, target.headers, timeout=30)
    if status != 200:
        raise RuntimeError(f"{target.name}: HTTP {status}: {payload[:300]!r}")
    if not stream:
        json.loads(payload)
        return 0
    frames = [line for line in payload.split(b"\n") if line.startswith(b"data:")]
    if not frames or frames[-1].strip() != b"data: [DONE]":
        raise RuntimeError(f"{target.name}: stream did not end with [DONE]")
    return len(frames)


# -- load generation -----------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    tool: str
    requests: int
    duration_s: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    server_cpu_s: float | None = None
    # Share of time CPU 0 and CPU 1 were busy (any process) during the measurement.
    cpu_busy: tuple[float, float] | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def server_cpu_ms_per_request(self) -> float | None:
        if self.server_cpu_s is None or not self.requests:
            return None
        return 1000.0 * self.server_cpu_s / self.requests

    @property
    def server_cpu_share(self) -> float | None:
        if self.server_cpu_s is None or not self.duration_s:
            return None
        return self.server_cpu_s / self.duration_s


def wrk_path() -> str | None:
    return shutil.which("wrk")


def loadgen_name(choice: str) -> str:
    """Resolve --loadgen auto|wrk|python to the tool actually used."""
    if choice == "auto":
        return "wrk" if wrk_path() else "python"
    if choice == "wrk" and not wrk_path():
        raise SystemExit("wrk is not installed (apt-get install -y wrk), use --loadgen python")
    return choice


def run_load(
    target: Target, concurrency: int, duration: float, tool: str, server_pid: int | None = None
) -> LoadResult:
    """Drive `target` for `duration` seconds at `concurrency` and measure it.

    Also records how busy CPU 0 and CPU 1 were, and with `server_pid` the CPU time the
    server's process tree used meanwhile.
    """
    ticks_before = cpu_ticks()
    cpu_before = tree_cpu_seconds(server_pid) if server_pid else None
    if tool == "wrk":
        result = _run_wrk(target, concurrency, duration)
    else:
        result = _run_async(_python_load(target, concurrency, duration))
    server_cpu = None
    if server_pid is not None and cpu_before is not None:
        server_cpu = tree_cpu_seconds(server_pid) - cpu_before
    busy = busy_shares(ticks_before, cpu_ticks())
    return replace(
        result,
        server_cpu_s=server_cpu,
        cpu_busy=(busy.get(SERVER_CPU, float("nan")), busy.get(LOAD_CPU, float("nan"))),
    )


def wrk_command(target_url: str, concurrency: int, duration: float) -> list[str]:
    return [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "30s",
        "-s",
        str(WRK_SCRIPT),
        target_url,
    ]


# Headers wrk_post.lua sets itself; any other header of a target goes in WRK_HEADERS.
_WRK_OWN_HEADERS = frozenset({"authorization", "content-type"})


def _run_wrk(target: Target, concurrency: int, duration: float) -> LoadResult:
    with tempfile.NamedTemporaryFile(suffix=".json") as body_file:
        body_file.write(target.body)
        body_file.flush()
        extra = {k: v for k, v in target.headers.items() if k.lower() not in _WRK_OWN_HEADERS}
        env = {
            **os.environ,
            "WRK_BODY_FILE": body_file.name,
            "WRK_AUTHORIZATION": target.headers.get("Authorization", ""),
            "WRK_HEADERS": "\n".join(f"{k}: {v}" for k, v in extra.items()),
        }
        completed = subprocess.run(
            pinned(wrk_command(target.url, concurrency, duration), LOAD_CPU),
            capture_output=True,
            text=True,
            env=env,
            timeout=duration + 60,
            check=False,
        )
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
        )
    data = json.loads(line.removeprefix("BENCHJSON "))
    errors = sum(
        int(data[k])
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return LoadResult(
        tool="wrk",
        requests=int(data["requests"]),
        duration_s=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


async def _python_load(target: Target, concurrency: int, duration: float) -> LoadResult:
    """Fallback load generator: `concurrency` closed-loop aiohttp clients on keep-alive."""
    import aiohttp

    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        start = time.perf_counter()
        deadline = start + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    async with session.post(
                        target.url, data=target.body, headers=dict(target.headers)
                    ) as response:
                        await response.read()
                        ok = response.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                latencies.append(time.perf_counter() - t0)
                if not ok:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return LoadResult(
        tool="python",
        requests=len(latencies),
        duration_s=elapsed,
        errors=errors,
        p50_ms=1000 * percentile(latencies, 50),
        p90_ms=1000 * percentile(latencies, 90),
        p99_ms=1000 * percentile(latencies, 99),
    )


def _run_async(coro: Coroutine[Any, Any, LoadResult]) -> LoadResult:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def loadgen_note(tool: str, concurrency: int, duration: float) -> str:
    """How the load was generated, for a report."""
    if tool == "wrk":
        version = " ".join(tool_version(["wrk", "-v"]).split()[:2])
        argv = wrk_command("URL", concurrency, duration)
        argv[argv.index(str(WRK_SCRIPT))] = str(WRK_SCRIPT.relative_to(ROOT))
        return f"{version}, one thread, closed loop on keep-alive connections: `{' '.join(argv)}`"
    why = "wrk is not installed" if wrk_path() is None else "chosen with --loadgen python"
    return (
        f"Python fallback: closed-loop aiohttp clients in the benchmark process ({why}); "
        "its latencies include Python client overhead and it saturates sooner than wrk"
    )


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(pct / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


class QuietGate:
    """Waits, within a total time budget, until no other process is busy on our CPUs.

    The machine may be shared (other test runs); a measurement taken while something else
    uses CPU 0 or CPU 1 measures that too. Before each measurement this waits until both
    CPUs are under `threshold` busy over a short window, or until the budget is spent.
    """

    def __init__(
        self, budget: float, retries: int = 3, threshold: float = 0.10, window: float = 0.5
    ) -> None:
        self.budget = budget
        self.retries = retries  # noisy measurements that may be taken again, in all
        self.threshold = threshold
        self.window = window
        self.waited = 0.0
        self.gave_up = 0
        self.checked = 0
        self.retried = 0

    def wait(self) -> None:
        while True:
            before = cpu_ticks()
            time.sleep(self.window)
            busy = busy_shares(before, cpu_ticks())
            if all(busy.get(cpu, 0.0) < self.threshold for cpu in (SERVER_CPU, LOAD_CPU)):
                return
            if self.waited >= self.budget:
                self.gave_up += 1
                return
            self.waited += self.window

    def note(self) -> str:
        text = (
            f"before each measurement, waited for CPU 0 and 1 to be under "
            f"{100 * self.threshold:.0f} % busy (budget {self.budget:g} s): waited "
            f"{self.waited:.1f} s in all"
        )
        if self.gave_up:
            text += f"; budget exhausted, {self.gave_up} measurement(s) started on a busy machine"
        if self.checked:
            text += (
                f"; {self.retried} of at most {self.retries} noisy measurement(s) (other load "
                f"on CPU 0 > {100 * NOISY_LOAD:.0f} %) repeated, the repeat kept"
            )
        return text

    def retry(self, result: LoadResult) -> bool:
        """Whether to take `result` again because something else was using CPU 0."""
        self.checked += 1
        load = foreign_load(result)
        if load is None or load <= NOISY_LOAD or self.retried >= self.retries:
            return False
        self.retried += 1
        self.wait()
        return True


def measure(
    target: Target,
    concurrency: int,
    duration: float,
    warmup: float,
    tool: str,
    server_pid: int | None = None,
    gate: QuietGate | None = None,
) -> LoadResult:
    if gate is not None:
        gate.wait()
    if warmup > 0:
        run_load(target, concurrency, warmup, tool)
    result = run_load(target, concurrency, duration, tool, server_pid)
    if gate is not None and gate.retry(result):
        result = run_load(target, concurrency, duration, tool, server_pid)
    if result.errors:
        print(f"  warning: {result.errors} failed requests for {target.name}", file=sys.stderr)
    return result


# -- process CPU time ----------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; it is enclosed in parentheses.
    return raw[raw.rindex(")") + 2 :].split()


def cpu_ticks() -> dict[int, tuple[int, int]]:
    """Per CPU: (busy ticks, total ticks) since boot, from /proc/stat."""
    ticks: dict[int, tuple[int, int]] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            name, *values = line.split()
            if not (name.startswith("cpu") and name[3:].isdigit()):
                continue
            # user nice system idle iowait irq softirq steal (guest time is inside user).
            numbers = [int(v) for v in values[:8]]
            idle = numbers[3] + numbers[4]
            ticks[int(name[3:])] = (sum(numbers) - idle, sum(numbers))
    return ticks


def busy_shares(
    before: Mapping[int, tuple[int, int]], after: Mapping[int, tuple[int, int]]
) -> dict[int, float]:
    shares: dict[int, float] = {}
    for cpu, (busy, total) in after.items():
        if cpu in before and total > before[cpu][1]:
            shares[cpu] = (busy - before[cpu][0]) / (total - before[cpu][1])
    return shares


def _process_table() -> dict[int, list[str]]:
    """/proc/<pid>/stat fields (after the command name) of every live process."""
    table: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            table[int(entry.name)] = fields
    return table


def _tree(pid: int, table: Mapping[int, list[str]]) -> set[int]:
    """`pid` and its live descendants (field 1 after the command name is the ppid)."""
    parents = {child: int(fields[1]) for child, fields in table.items()}
    tree = {pid}
    changed = True
    while changed:
        changed = False
        for child, parent in parents.items():
            if parent in tree and child not in tree:
                tree.add(child)
                changed = True
    return tree


def tree_pids(pid: int) -> set[int]:
    """`pid` and its live descendants."""
    return _tree(pid, _process_table())


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its live descendants (from /proc)."""
    table = _process_table()
    # After the command name: state, ppid, ..., utime (14th field) and stime (15th).
    ticks = sum(int(table[p][11]) + int(table[p][12]) for p in _tree(pid, table) if p in table)
    return ticks / _CLK_TCK


def tree_rss_bytes(pid: int) -> int:
    """Resident memory (VmRSS) of `pid` and its live descendants, summed, in bytes.

    Summing RSS counts pages shared between processes (e.g. nginx's master and worker)
    more than once, so for multi-process servers it is an upper bound.
    """
    total = 0
    for p in tree_pids(pid):
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
    return total


# -- reporting -----------------------------------------------------------------------------


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def tool_version(argv: Sequence[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        completed = subprocess.run(list(argv), capture_output=True, text=True, timeout=10)
        text = (completed.stdout or completed.stderr).strip()
        return text.splitlines()[0] if text else "unknown"
    return "unknown"


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "unknown"


def switchyard_source() -> str:
    """Where the measured Switchyard code comes from: its src/ folder and git commit."""
    import switchyard

    src = Path(switchyard.__file__).resolve().parent.parent
    git = ["git", "-C", str(src)]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        rev = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        if rev:
            return f"`{src}` at commit {rev}" + (" + uncommitted changes" if dirty else "")
    return f"`{src}`"


def machine_info(packages: Sequence[str] = PACKAGES) -> list[tuple[str, str]]:
    rows = [
        ("date (UTC)", time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())),
        ("nproc", f"{os.cpu_count()} (usable: {len(_CPUS)})"),
        ("CPU model", cpu_model()),
        ("kernel", platform.release()),
        ("load average (1/5/15 min) at report time", load_average()),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
    ]
    rows += [(name, package_version(name)) for name in packages]
    rows.append(("Switchyard source", switchyard_source()))
    return rows


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: bool = True) -> str:
    """A markdown table; with `numeric`, every column but the first is right-aligned."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    rule = ["---" if i == 0 or not numeric else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def kv_table(rows: Sequence[tuple[str, str]]) -> str:
    return md_table(["item", "value"], rows, numeric=False)


def write_report(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    print(f"wrote {path}")


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def foreign_load(result: LoadResult) -> float | None:
    """Share of CPU 0 used by processes other than the server under test (0 = quiet)."""
    if result.cpu_busy is None:
        return None
    return max(0.0, result.cpu_busy[0] - (result.server_cpu_share or 0.0))


def busy_cells(result: LoadResult) -> list[str]:
    """Other processes' load on CPU 0 and CPU 1's busy share, in percent, for a report row."""
    other = foreign_load(result)
    if result.cpu_busy is None or other is None:
        return ["n/a", "n/a"]
    return [f"{100 * other:.0f}", f"{100 * result.cpu_busy[1]:.0f}"]


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
