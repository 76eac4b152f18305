"""The parts bench/run.py and bench/profile_get.py share.

- Servers: start Strongroom, moto's standalone server or the constant-response ceiling app as
  subprocesses on free loopback ports; read their CPU time and memory from /proc.
- Signing: real SigV4 with botocore's own signer, rendered as raw HTTP/1.1 bytes so a fast
  client can replay them (a signature stays valid for 5 minutes).
- Clients: ``wrk`` (C, from Debian) replaying pre-signed requests through bench/replay.lua for
  timed runs, either in a closed loop (as fast as answers come) or paced at a fixed offered
  rate (latency measured from each request's scheduled send time), and a multi-process
  asyncio client that sends a list of requests exactly once (seeding, warm-up) or, as a
  fallback where wrk is missing, replays them for a duration in a closed loop.

Only 127.0.0.1 is ever contacted, and every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

BENCH_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
ROOT_KEY_ID = "AKIABENCHROOTKEY0001"
ROOT_SECRET = "bench-root-secret-access-key-not-for-real-use"
TARGET_PREFIX = "secretsmanager."
CONTENT_TYPE = "application/x-amz-json-1.1"
# A typical small secret: a JSON document of about 100 bytes.
SECRET_VALUE = json.dumps(
    {
        "username": "app_user",
        "password": "x7#Qv9!mR2@pL4$wZ8^kT1",
        "host": "db.internal",
        "port": 5432,
    }
)
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


class BenchError(RuntimeError):
    """A step of the benchmark could not run; the message says what to do."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def secret_name(index: int) -> str:
    return f"bench/secret-{index:06d}"


# --- servers ------------------------------------------------------------------------------


@dataclass
class Server:
    name: str  # short name in tables: strongroom, moto, ceiling
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    _log: Any = field(repr=False, default=None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def processes(self) -> list[int]:
        """The server's pid and its live descendants (``--workers`` starts child processes)."""
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for children in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in children.read_text().split())
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server's processes, all threads."""
        return process_cpu_seconds(self.processes())

    def memory_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) in MiB, summed over the server's processes: now, and the peaks."""
        rss = peak = 0.0
        for pid in self.processes():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    key, _, rest = line.partition(":")
                    if key == "VmRSS":
                        rss += int(rest.split()[0]) / 1024  # kB
                    elif key == "VmHWM":
                        peak += int(rest.split()[0]) / 1024
        return rss, peak

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(
                f"{self.name} exited with {self.proc.returncode}; its log: {self.log_path}\n"
                + tail(self.log_path)
            )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # uvicorn and werkzeug shut down cleanly
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _clean_env() -> dict[str, str]:
    # No inherited STRONGROOM_* setting may change what is measured (STRONGROOM_DEV=1 would
    # switch signature checks off), and no AWS_* variable may redirect the signer.
    return {k: v for k, v in os.environ.items() if not k.startswith(("STRONGROOM_", "AWS_"))}


def _spawn(name: str, argv: list[str], workdir: Path, env: dict[str, str]) -> Server:
    port = int(argv[argv.index("--port") + 1]) if "--port" in argv else int(argv[-1])
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=workdir,
        start_new_session=True,  # a ^C to the bench does not hit the server mid-measurement
    )
    return Server(name=name, port=port, proc=proc, log_path=log_path, _log=log)


def start_strongroom(
    workdir: Path,
    *,
    data_dir: Path | None = None,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    name: str = "strongroom",
) -> Server:
    """``strongroom serve`` on a free port. ``env`` adds ``STRONGROOM_*`` settings (a database
    URL goes there rather than into argv, where ``ps`` would show its password); ``name``
    labels the server in tables and names its log file, so give each node its own."""
    exe = VENV_BIN / "strongroom"
    if not exe.exists():
        raise BenchError(f"{exe} not found: install Strongroom with `.venv/bin/pip install -e .`")
    data_dir = data_dir or workdir / "strongroom-data"
    environ = (
        _clean_env()
        | {
            "STRONGROOM_ROOT_ACCESS_KEY_ID": ROOT_KEY_ID,
            "STRONGROOM_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET,
        }
        | (env or {})
    )
    port = free_port()
    argv = [str(exe), "serve", "--host", HOST, "--port", str(port), "--data-dir", str(data_dir)]
    argv += ["--account-id", ACCOUNT_ID, *extra_args]
    server = _spawn(name, argv, workdir, environ)
    _ready_or_stop(server)
    return server


def run_strongroom_command(argv: Sequence[str], env: dict[str, str], timeout: float = 120.0) -> str:
    """Run ``strongroom <argv>`` (e.g. ``migrate``) with ``env`` added; its output, or raise."""
    exe = VENV_BIN / "strongroom"
    done = subprocess.run(
        [str(exe), *argv],
        env=_clean_env() | env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"strongroom {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


def start_moto(workdir: Path) -> Server:
    exe = VENV_BIN / "moto_server"
    if not exe.exists():
        raise BenchError(
            f"{exe} not found: the anchor is moto's standalone server; install it with "
            "`.venv/bin/pip install -e '.[bench]'` (or `.venv/bin/pip install 'moto[server]'`)"
        )
    port = free_port()
    env = _clean_env() | {"AWS_DEFAULT_REGION": REGION}
    server = _spawn("moto", [str(exe), "-H", HOST, "--port", str(port)], workdir, env)
    _ready_or_stop(server)
    return server


def start_ceiling(workdir: Path) -> Server:
    """The constant-response uvicorn app: the ceiling of a Python HTTP service here."""
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "ceiling_app.py"), "--port", str(port)]
    server = _spawn("ceiling", argv, workdir, _clean_env())
    _ready_or_stop(server)
    return server


def _ready_or_stop(server: Server) -> None:
    try:
        wait_ready(server)
    except BaseException:
        server.stop()  # never leave a server behind that the caller has no handle on
        raise


def wait_ready(server: Server) -> None:
    signer = Signer(server.port)
    deadline = time.monotonic() + START_TIMEOUT
    answer = "no connection"
    while True:
        server.check_alive()
        try:
            status, body = http_once(server.port, signer.sign("ListSecrets", {}))
            answer = f"{status} {body[:300]!r}"
        except OSError as exc:
            status, answer = 0, str(exc)
        if status == 200:
            return
        if time.monotonic() > deadline:
            raise BenchError(
                f"{server.name} did not answer ListSecrets with 200 within {START_TIMEOUT:.0f} s "
                f"(last: {answer}); its log:\n{tail(server.log_path)}"
            )
        time.sleep(0.2)


# --- signing ------------------------------------------------------------------------------


class Signer:
    """Real SigV4 requests for one endpoint, as raw HTTP/1.1 bytes."""

    def __init__(self, port: int, *, key_id: str = ROOT_KEY_ID, secret: str = ROOT_SECRET) -> None:
        self.port = port
        self.url = f"http://{HOST}:{port}/"
        self.host = f"{HOST}:{port}"
        self.auth = SigV4Auth(Credentials(key_id, secret), "secretsmanager", REGION)

    def sign(self, operation: str, body: dict[str, Any]) -> bytes:
        data = json.dumps(body, separators=(",", ":")).encode()
        request = AWSRequest(
            method="POST",
            url=self.url,
            data=data,
            headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET_PREFIX + operation},
        )
        self.auth.add_auth(request)
        lines = [f"POST / HTTP/1.1\r\nHost: {self.host}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in request.headers.items()]
        lines.append(f"Content-Length: {len(data)}\r\n\r\n")
        return "".join(lines).encode("latin-1") + data


def http_once(port: int, raw: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    """Send one raw request on a fresh connection; (status, body)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(raw)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def call(port: int, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    status, data = http_once(port, Signer(port).sign(operation, body))
    if status != 200:
        raise BenchError(f"{operation} answered {status}: {data[:300]!r}")
    return json.loads(data) if data else {}


# --- the asyncio client -------------------------------------------------------------------

Item = tuple[str, dict[str, Any]]  # (operation, request body): signed when it is sent


@dataclass
class SendReport:
    sent: int
    seconds: float
    statuses: Counter[int]
    errors: list[str]  # a few error bodies, for the message when something failed

    @property
    def ok(self) -> bool:
        return set(self.statuses) == {200}

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


_CONNECTION_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


class _Connection:
    """One HTTP/1.1 connection that reopens itself when the server closes it after a
    response (moto's werkzeug server answers every request with "Connection: close")."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        match = _CONTENT_LENGTH.search(head)
        if match is None:
            raise BenchError(f"response without Content-Length: {head[:200]!r}")
        body = await self.reader.readexactly(int(match.group(1)))
        if _CONNECTION_CLOSE.search(head) or head.startswith(b"HTTP/1.0"):
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _send_each(
    port: int, items: Sequence[Item], connections: int
) -> tuple[Counter[int], list[str]]:
    signer = Signer(port)
    queue: Iterator[Item] = iter(items)
    statuses: Counter[int] = Counter()
    errors: list[str] = []

    async def connection() -> None:
        conn = _Connection(port)
        try:
            for operation, body in queue:  # shared iterator: each item goes out once
                # Signed now, so fresh for 5 minutes however long the whole list takes.
                status, data = await conn.exchange(signer.sign(operation, body))
                statuses[status] += 1
                if status != 200 and len(errors) < 5:
                    errors.append(f"{operation} {status} {data[:200]!r}")
        finally:
            conn.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return statuses, errors


def _send_each_worker(
    args: tuple[int, Sequence[Item], int, float],
) -> tuple[Counter[int], list[str]]:
    port, items, connections, timeout = args
    return asyncio.run(asyncio.wait_for(_send_each(port, items, connections), timeout))


def send_each(
    port: int,
    items: Sequence[Item],
    *,
    connections: int = 32,
    processes: int = 2,
    timeout: float = 900.0,
) -> SendReport:
    """Send every item exactly once, over ``connections`` keep-alive connections in all."""
    if not items:
        return SendReport(0, 0.0, Counter(), [])
    processes = max(1, min(processes, len(items) // 200 or 1))
    per_process = max(1, connections // processes)
    jobs = [(port, list(items[k::processes]), per_process, timeout) for k in range(processes)]
    started = time.perf_counter()
    if processes == 1:
        results = [_send_each_worker(jobs[0])]
    else:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            results = pool.map(_send_each_worker, jobs)
    seconds = time.perf_counter() - started
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    for counts, errs in results:
        statuses.update(counts)
        errors.extend(errs)
    return SendReport(sum(statuses.values()), seconds, statuses, errors[:5])


async def _replay(
    port: int, raws: Sequence[bytes], connections: int, duration: float
) -> tuple[list[int], int, int]:
    latencies: list[int] = []
    failures = 0
    deadline = time.perf_counter() + duration
    counter = itertools.count()

    async def connection() -> None:
        nonlocal failures
        conn = _Connection(port)
        try:
            while time.perf_counter() < deadline:
                raw = raws[next(counter) % len(raws)]
                started = time.perf_counter_ns()
                status, _ = await conn.exchange(raw)
                latencies.append(time.perf_counter_ns() - started)
                failures += status >= 400
        finally:
            conn.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return latencies, failures, next(counter) // len(raws)


def _replay_worker(args: tuple[int, Sequence[bytes], int, float]) -> tuple[list[int], int, int]:
    port, raws, connections, duration = args
    return asyncio.run(asyncio.wait_for(_replay(port, raws, connections, duration), duration + 60))


# --- timed runs ---------------------------------------------------------------------------


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx answers plus socket errors and timeouts
    wraps: int  # times a client thread ran out of distinct requests and started again
    server_cpu: float  # server CPU time / wall time (1.0 = one core busy)
    client_cpu: float  # the same for the load client
    client: str
    other_cpu: float = 0.0  # cores busy with anything else on the machine meanwhile
    # Paced runs only: the offered rate, and how late requests went out after their slot
    # (p50/p99 above then count from the slot, so they include this lag).
    offered_rps: float | None = None
    lag_p99_ms: float | None = None
    behind: int = 0  # requests sent over one interval late: their previous answer came late
    db_cpu: float | None = None  # the database server's CPU for this load, where measured

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def system_busy_seconds() -> float:
    """CPU seconds spent busy (not idle, not waiting for I/O) by all cores since boot."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_load(
    server: Server,
    raws: Sequence[bytes],
    *,
    connections: int,
    duration: float,
    workdir: Path,
    client: str = "wrk",
    threads: int = 1,
    rate: float | None = None,
) -> LoadResult:
    """Replay ``raws`` against ``server`` for ``duration`` seconds; wrk or asyncio.

    Without ``rate`` the loop is closed: every connection sends again as soon as it has its
    answer. With ``rate`` (wrk only) the ``connections`` together offer ``rate`` requests/s on
    a fixed schedule, one wrk thread per connection (see replay.lua).
    """
    server.check_alive()
    if rate is not None:
        if client != "wrk":
            raise BenchError("paced runs need wrk: apt-get update && apt-get install -y wrk")
        if len(raws) < connections:
            raise BenchError(f"a paced run needs at least {connections} distinct requests")
        threads = connections
    threads = max(1, min(threads, connections, len(raws)))
    cpu0, child0, busy0 = server.cpu_seconds(), _children_cpu(), system_busy_seconds()
    wall0 = time.perf_counter()
    if client == "wrk":
        result = _run_wrk(
            server.port, raws, connections, duration, threads=threads, workdir=workdir, rate=rate
        )
    else:
        result = _run_asyncio(server.port, raws, connections, duration, threads)
    wall = time.perf_counter() - wall0
    result.server_cpu = (server.cpu_seconds() - cpu0) / wall
    result.client_cpu = (_children_cpu() - child0) / wall
    busy = (system_busy_seconds() - busy0) / wall
    result.other_cpu = max(0.0, busy - result.server_cpu - result.client_cpu)
    server.check_alive()
    return result


def run_load_together(
    loads: Sequence[tuple[Server, Sequence[bytes]]],
    *,
    connections: int,
    duration: float,
    workdir: Path,
    client: str = "wrk",
    threads: int = 1,
    db_cpu_seconds: Callable[[], float] | None = None,
) -> tuple[LoadResult, list[LoadResult]]:
    """Closed-loop load on several servers at once: one client per server, all started
    together, each replaying its own requests (signed for its port) over ``connections``.

    Returns (combined, per server). wrk takes one URL, hence one client process per server.
    Combined: requests and errors summed; the rate is the sum of the clients' rates (each
    over its own measured duration, which differ by a few ms); p50 and p99 are the worst
    server's. A percentile of two merged samples lies between the two samples' percentiles
    (at least 99% of each is <= the larger p99, so 99% of the union is), so the worse one
    is an upper bound that never flatters; the exact merged figure would need wrk's whole
    histograms. ``db_cpu_seconds`` (cumulative CPU seconds of the database server, where
    it can be read) makes the database's share show apart from "other".
    """
    for server, raws in loads:
        server.check_alive()
        if not raws:
            raise BenchError(f"no requests for {server.name}")
    cpu0 = [server.cpu_seconds() for server, _ in loads]
    child0, busy0 = _children_cpu(), system_busy_seconds()
    db0 = db_cpu_seconds() if db_cpu_seconds is not None else 0.0
    wall0 = time.perf_counter()

    def one(server: Server, raws: Sequence[bytes]) -> LoadResult:
        count = max(1, min(threads, connections, len(raws)))
        if client == "wrk":
            return _run_wrk(
                server.port, raws, connections, duration, threads=count, workdir=workdir
            )
        return _run_asyncio(server.port, raws, connections, duration, max(count, 1))

    with ThreadPoolExecutor(max_workers=len(loads)) as pool:
        futures = [pool.submit(one, server, raws) for server, raws in loads]
        per = [future.result() for future in futures]
    wall = time.perf_counter() - wall0
    for (server, _), result, start in zip(loads, per, cpu0, strict=True):
        result.server_cpu = (server.cpu_seconds() - start) / wall
        server.check_alive()
    rates = sum(r.rps for r in per)
    total = sum(r.requests for r in per)
    combined = LoadResult(
        requests=total,
        seconds=total / rates if rates else max(r.seconds for r in per),
        p50_ms=max(r.p50_ms for r in per),
        p99_ms=max(r.p99_ms for r in per),
        errors=sum(r.errors for r in per),
        wraps=sum(r.wraps for r in per),
        server_cpu=sum(r.server_cpu for r in per),
        client_cpu=(_children_cpu() - child0) / wall,
        client=f"{len(per)} x {per[0].client}",
    )
    busy = (system_busy_seconds() - busy0) / wall
    if db_cpu_seconds is not None:
        combined.db_cpu = (db_cpu_seconds() - db0) / wall
    combined.other_cpu = max(
        0.0, busy - combined.server_cpu - combined.client_cpu - (combined.db_cpu or 0.0)
    )
    return combined, per


def process_cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of ``pids`` (gone or unreadable ones count 0)."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def _run_wrk(
    port: int,
    raws: Sequence[bytes],
    connections: int,
    duration: float,
    *,
    threads: int,
    workdir: Path,
    rate: float | None = None,
) -> LoadResult:
    path = workdir / f"requests-{port}.bin"  # one file per server: loads may run side by side
    with path.open("wb") as handle:
        for raw in raws:
            if b"\0" in raw:
                raise BenchError(
                    "a request contains a NUL byte, which replay.lua uses as separator"
                )
            handle.write(raw + b"\0")
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH_DIR / "replay.lua"),
        f"http://{HOST}:{port}/",
        "--",
        str(path),
        str(threads),
        *([] if rate is None else [f"{rate:g}"]),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("RESULT "))
    errors = sum(
        data[k]
        for k in ("status_errors", "connect_errors", "read_errors", "write_errors", "timeouts")
    )
    result = LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
        wraps=data["wraps"],
        server_cpu=0.0,
        client_cpu=0.0,
        client=f"wrk -t{threads}",
    )
    if rate is not None:
        if not data.get("paced_delay_calls") or not data.get("paced_answers"):
            # This wrk did not take up the hooks replay.lua defines in init(): it was not paced.
            raise BenchError(f"wrk did not pace the run (too old a wrk?):\n{line}")
        result.offered_rps = rate
        result.p50_ms = data["paced_p50_us"] / 1000
        result.p99_ms = data["paced_p99_us"] / 1000
        result.lag_p99_ms = data["paced_lag_p99_us"] / 1000
        result.behind = data["paced_behind"]
        result.client = f"wrk -t{threads} paced"
    return result


def _run_asyncio(
    port: int, raws: Sequence[bytes], connections: int, duration: float, processes: int
) -> LoadResult:
    per_process = max(1, connections // processes)
    jobs = [(port, list(raws[k::processes]), per_process, duration) for k in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        results = pool.map(_replay_worker, jobs)
    latencies = sorted(itertools.chain.from_iterable(r[0] for r in results))
    if not latencies:
        raise BenchError("the asyncio client completed no request")

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] / 1e6

    return LoadResult(
        requests=len(latencies),
        seconds=duration,  # each connection stops starting requests at the deadline
        p50_ms=percentile(0.50),
        p99_ms=percentile(0.99),
        errors=sum(r[1] for r in results),
        wraps=sum(r[2] for r in results),
        server_cpu=0.0,
        client_cpu=0.0,
        client=f"asyncio x{processes}",
    )


# --- request sets -------------------------------------------------------------------------


def create_items(first: int, count: int) -> list[Item]:
    return [
        (
            "CreateSecret",
            {
                "Name": secret_name(i),
                "SecretString": SECRET_VALUE,
                "ClientRequestToken": str(uuid.uuid4()),
            },
        )
        for i in range(first, first + count)
    ]


def put_item(name: str) -> Item:
    return (
        "PutSecretValue",
        {"SecretId": name, "SecretString": SECRET_VALUE, "ClientRequestToken": str(uuid.uuid4())},
    )


def kill_quietly(server: Server | None) -> None:
    if server is not None:
        with contextlib.suppress(Exception):
            server.stop()
