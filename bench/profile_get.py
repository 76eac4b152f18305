"""Profile Strongroom under GetSecretValue load: what bounds its throughput.

    .venv/bin/pip install py-spy
    .venv/bin/python bench/profile_get.py [--duration 15] [--connections 32] [--svg get.svg]

Starts Strongroom (full checks) on a free loopback port with --secrets secrets created
through the API, drives it with wrk replaying signed GetSecretValue requests, and samples it
with py-spy meanwhile. By default every thread the OS shows running or runnable is sampled
(py-spy leaves idle threads out; waits on locks, queues and epoll are dropped here too), so
the samples follow CPU time, in the event loop and in the worker threads alike, including
time outside the GIL (SQLite, AES-GCM, socket writes). ``--gil`` samples only the thread
holding the GIL instead: on a busy machine that also counts time the holder sits
descheduled, which overstates the event loop (it holds the GIL while the workers wait).

Native (C) frames are sampled too unless --no-native: without them, time the event loop
spends in C (uvloop, socket writes, task steps) is charged to whichever coroutine frame
was last current, which misleads. Native unwinding is slow, so there are fewer samples.

Prints where the samples fall by layer (the innermost Strongroom module on the stack, or the
library when no Strongroom code is on it), the Strongroom functions by inclusive time, and
the leaf functions by self time. ``--svg`` also records a flame graph.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h
from run import DEFAULT_POSTGRES, BenchDatabase

_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")
# Leaf frames of threads that are waiting, not working.
IDLE_LEAVES = {
    ("wait", "threading.py"),
    ("get", "queue.py"),
    ("select", "selectors.py"),
    ("_run_once", "asyncio/base_events.py"),
    ("run_forever", "asyncio/base_events.py"),
}
# Blocked samples that are idleness, not contention: workers waiting for work, the event
# loop (uvloop: only C below Runner.run) waiting in epoll.
IDLE_WAITERS = {*IDLE_LEAVES, ("run", "asyncio/runners.py")}


@dataclass(frozen=True)
class Frame:
    name: str
    file: str

    @classmethod
    def parse(cls, text: str) -> Frame:
        match = _FRAME.match(text)
        if match is None:
            return cls(text, "?")
        return cls(match["name"], match["file"])

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def strongroom_module(self) -> str | None:
        marker = "strongroom/"
        at = self.file.rfind(marker)
        return self.file[at:] if at >= 0 else None

    @property
    def is_python(self) -> bool:
        return self.file.endswith(".py")

    @property
    def package(self) -> str:
        path = self.file
        for cut in ("site-packages/", "python3.11/", "lib/python3"):
            if cut in path:
                path = path.split(cut, 1)[1]
        top = path.split("/", 1)[0]
        return top.removesuffix(".py") if "/" not in path else top

    def __str__(self) -> str:
        return f"{self.name} ({self.file})"


def read_samples(path: Path) -> Samples:
    samples = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples.append(([Frame.parse(f) for f in stack.split(";")], int(count)))
    return samples


def layer(frames: list[Frame]) -> str:
    """The innermost Strongroom module on the stack (the CLI entry point aside), else the
    package of the innermost Python frame: the event loop, uvicorn, the thread pool."""
    for frame in reversed(frames):
        module = frame.strongroom_module
        if module is not None and not module.startswith("strongroom/cli/"):
            return module
    for frame in reversed(frames):
        if frame.is_python and frame.strongroom_module is None:
            return f"({frame.package}, outside Strongroom)"
    return "(native code only)"


Samples = list[tuple[list[Frame], int]]


@dataclass
class Tally:
    total: int = 0
    by_layer: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[Frame] = field(default_factory=Counter)  # Strongroom functions
    packages: Counter[str] = field(default_factory=Counter)  # Python libraries, inclusive
    own: Counter[Frame] = field(default_factory=Counter)  # leaf frames

    @classmethod
    def of(cls, samples: Samples) -> Tally:
        tally = cls()
        for frames, n in samples:
            tally.total += n
            tally.by_layer[layer(frames)] += n
            for frame in set(frames):
                if frame.strongroom_module is not None:
                    tally.inclusive[frame] += n
            for package in {f.package for f in frames if f.is_python and not f.strongroom_module}:
                tally.packages[package] += n
            tally.own[frames[-1]] += n
        return tally


def report(samples: Samples, top: int, focus: str | None = None) -> None:
    tally = Tally.of(samples)
    if not tally.total:
        print("no samples")
        return
    sections: list[tuple[str, list[tuple[object, int]]]] = [
        (
            "By layer (time in the innermost Strongroom module on the stack, callees included)",
            list(tally.by_layer.most_common(top)),
        ),
        ("Strongroom functions, inclusive", list(tally.inclusive.most_common(top))),
        (
            "Libraries, inclusive (any frame of the package on the stack)",
            list(tally.packages.most_common(12)),
        ),
        ("Leaf functions, self time", list(tally.own.most_common(top))),
    ]
    if focus:
        callees: Counter[str] = Counter()
        for frames, n in samples:
            names = [f.name for f in frames]
            if focus in names:
                at = len(names) - 1 - names[::-1].index(focus)
                callees[str(frames[at + 1]) if at + 1 < len(frames) else "(itself)"] += n
        sections.append((f"Inside {focus}, by callee", list(callees.most_common(top))))
    print(f"\n{tally.total} samples")
    for title, entries in sections:
        print(f"\n{title}:")
        for what, n in entries:
            print(f"  {100 * n / tally.total:5.1f}%  {what}")


def is_waiting(frames: list[Frame]) -> bool:
    """A thread blocked on a lock, a condition, a queue or epoll, not working."""
    python_at = max((i for i, f in enumerate(frames) if f.is_python), default=-1)
    native_tail = frames[python_at + 1 :]
    waits = ("wait", "futex", "poll", "sem_", "mutex_lock")  # mutex_lock: taking the GIL back
    if any(w in f.name for f in native_tail for w in waits):
        return True
    if python_at < 0:
        return False
    python = frames[python_at]
    return any(python.short_name == name and python.file.endswith(f) for name, f in IDLE_LEAVES)


def split_waits(samples: Samples) -> tuple[Samples, Counter[str]]:
    """Working samples, and the blocked ones (not idle pool threads) by what they wait in."""
    working: Samples = []
    waits: Counter[str] = Counter()
    for frames, n in samples:
        if not is_waiting(frames):
            working.append((frames, n))
            continue
        python = [f for f in frames if f.is_python]
        if python and any(
            python[-1].short_name == name and python[-1].file.endswith(f)
            for name, f in IDLE_WAITERS
        ):
            continue  # an idle worker or the event loop waiting for work: not contention
        # Blocked inside Python code: on the GIL after a C call, a pool, a database lock.
        waits[str(python[-1]) if python else str(frames[-1])] += n
    return working, waits


def py_spy() -> str:
    found = h.VENV_BIN / "py-spy"
    if found.exists():
        return str(found)
    which = shutil.which("py-spy")
    if which is None:
        raise h.BenchError("py-spy not found: `.venv/bin/pip install py-spy`")
    return which


def record(
    pid: int, out: Path, seconds: float, *, rate: int, fmt: str, gil: bool, native: bool
) -> None:
    """Run ``py-spy record`` against ``pid`` for ``seconds``."""
    argv = [
        py_spy(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(round(seconds)),
        "--rate",
        str(rate),
        "--format",
        fmt,
        "--output",
        str(out),
    ]
    if gil:
        argv.append("--gil")
    if native:
        argv.append("--native")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0 or not out.exists():
        raise h.BenchError(f"py-spy failed ({done.returncode}): {done.stderr.strip()}")


def prepare(server: h.Server, count: int) -> list[bytes]:
    """Create ``count`` secrets through the API; signed GetSecretValue requests for them."""
    created = h.send_each(server.port, h.create_items(0, count), connections=32)
    print(f"seeded {count:,} secrets at {created.rate:,.0f}/s", flush=True)
    items = [("GetSecretValue", {"SecretId": h.secret_name(i)}) for i in range(min(count, 1000))]
    checked = h.send_each(server.port, items, connections=32)
    if not (created.ok and checked.ok):
        raise h.BenchError(f"seeding failed: {created.errors} {checked.errors}")
    signer = h.Signer(server.port)
    return [signer.sign(op, body) for op, body in items]


def profile(
    args: argparse.Namespace, server: h.Server, workdir: Path, database: BenchDatabase | None
) -> Path:
    """Sample the server under GetSecretValue load; the collapsed stacks' path."""
    raws = prepare(server, args.secrets)
    if database is not None:
        database.analyze()  # as run.py does: the steady state's plans, not the empty table's
    warmup = 2.0
    windows = args.duration + (args.duration if args.svg else 0.0)
    results: list[h.LoadResult] = []

    def drive() -> None:
        results.append(
            h.run_load(
                server,
                raws,
                connections=args.connections,
                duration=warmup + windows + 1,
                workdir=workdir,
            )
        )

    load = threading.Thread(target=drive)
    load.start()
    threading.Event().wait(warmup)
    raw: Path = args.raw or workdir / "profile.txt"
    options = {"rate": args.rate, "gil": args.gil, "native": not args.no_native}
    record(server.pid, raw, args.duration, fmt="raw", **options)
    if args.svg:
        record(server.pid, args.svg, args.duration, fmt="flamegraph", **options)
        print(f"flame graph: {args.svg}")
    load.join(windows + 120)
    if results:
        r = results[0]
        print(
            f"GetSecretValue x{args.connections} under the profiler: {r.rps:,.0f}/s, "
            f"p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, server CPU {r.server_cpu:.2f}, "
            f"other CPU {r.other_cpu:.2f}"
        )
    return raw


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds sampled")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--secrets", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--gil", action="store_true", help="only the thread holding the GIL")
    parser.add_argument(
        "--no-native",
        action="store_true",
        help="Python frames only (more samples, but time in C code called "
        "from the event loop lands on a stale coroutine frame)",
    )
    parser.add_argument("--svg", type=Path, help="also record a flame graph here")
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--focus", default="Frontend._http", help="also break this function down by callee"
    )
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=DEFAULT_POSTGRES,
        metavar="ADMIN_URL",
        help="serve from a fresh PostgreSQL database made (and dropped) through ADMIN_URL "
        f"(default {DEFAULT_POSTGRES})",
    )
    parser.add_argument("--no-audit", action="store_true", help="the audit trail off")
    args = parser.parse_args()
    if not h.have_wrk():
        parser.error("wrk is not installed: apt-get update && apt-get install -y wrk")
    py_spy()

    workdir = Path(tempfile.mkdtemp(prefix="strongroom-profile-"))
    env = {"STRONGROOM_AUDIT": "false"} if args.no_audit else {}
    database = BenchDatabase(args.postgres) if args.postgres else None
    if database is not None:
        env["STRONGROOM_DATABASE_URL"] = database.url
    try:
        server = h.start_strongroom(workdir, env=env)
    except BaseException:
        if database is not None:
            database.drop()
        raise
    try:
        raw = profile(args, server, workdir, database)
        samples = read_samples(raw)
        if not args.gil:
            samples, waits = split_waits(samples)
            working = sum(n for _, n in samples) or 1
            print(
                "\nBlocked threads (taking the GIL back after a C call, waiting for a pooled "
                "connection or a lock), left out below; per 100 working samples:"
            )
            for where, n in waits.most_common(8):
                print(f"  {100 * n / working:5.1f}  {where}")
        print(
            "sampled:",
            "the GIL holder" if args.gil else "all running threads, waits left out",
            "with native (C) frames" if not args.no_native else "Python frames only",
        )
        report(samples, args.top, args.focus)
    except h.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()
        if database is not None:
            database.drop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
