"""Where GetSecretValue's CPU goes, by process and thread, with the audit trail on and off.

    .venv/bin/python bench/thread_cpu.py [--rounds 2] [--duration 8] [--workers 2]

Creates 1,000 secrets through the API, then runs GetSecretValue rounds alternating the audit
trail on and off (on, off, off, on, ...: a machine that gets busier or quieter weighs on
both alike), each on a freshly started server over the same data dir: every request sent
once, a warm-up, then wrk replaying the signed requests for --duration at --connections.
Before and after each timed run it reads the CPU time of every thread of the server's
processes (/proc/<pid>/task/<tid>/stat), so the figures are µs of CPU per request, which
hold on a busy machine where requests/s do not.

Threads are told apart by process and by whether they are the process's main thread:
- a worker's main thread runs its event loop (every request's own work, and the trail's
  records: rendered, framed, written, waited for); its other threads are the trail's
  background work (moving the journal into audit_events, sealing) and the thread pools;
- the supervisor's threads (``serve --workers N``) accept connections and do the
  journal's fdatasync for each worker; a single-process server has a sync child instead.

The kernel's own threads (the file system's journal, writeback) are not counted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h

SECRETS = 1000
Key = tuple[str, str]  # (process role, thread: "main" or "others")


def thread_cpu(server: h.Server, workers: int) -> dict[Key, float]:
    """CPU seconds so far of every thread of the server's processes, by role."""
    tick = os.sysconf("SC_CLK_TCK")
    seconds: defaultdict[Key, float] = defaultdict(float)
    for pid in server.processes():
        role = _role(server, pid, workers)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            thread = "main" if int(task.name) == pid else "others"
            seconds[(role, thread)] += (int(fields[11]) + int(fields[12])) / tick  # utime+stime
    return seconds


def _role(server: h.Server, pid: int, workers: int) -> str:
    if pid == server.pid:
        return "supervisor" if workers > 1 else "server"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "other"
    return "sync child" if b"sync_child" in argv else "worker"


def one_round(args: argparse.Namespace, workdir: Path, data_dir: Path, audit: bool) -> None:
    extra = ["--workers", str(args.workers)] if args.workers > 1 else []
    env = {} if audit else {"STRONGROOM_AUDIT": "false"}
    server = h.start_strongroom(workdir, data_dir=data_dir, extra_args=extra, env=env)
    try:
        items = [("GetSecretValue", {"SecretId": h.secret_name(i)}) for i in range(SECRETS)]
        h.send_each(server.port, items, connections=args.connections)
        signer = h.Signer(server.port)
        raws = [signer.sign(operation, body) for operation, body in items]
        h.run_load(server, raws, connections=args.connections, duration=2, workdir=workdir)
        before = thread_cpu(server, args.workers)
        result = h.run_load(
            server, raws, connections=args.connections, duration=args.duration, workdir=workdir
        )
        after = thread_cpu(server, args.workers)
    finally:
        server.stop()
    per_request = {
        key: (seconds - before.get(key, 0.0)) / result.requests * 1e6
        for key, seconds in after.items()
    }
    total = sum(per_request.values())
    print(
        f"audit {'on ' if audit else 'off'}: {result.rps:,.0f}/s, p99 {result.p99_ms:.1f} ms, "
        f"{total:.0f} µs of CPU per request",
        flush=True,
    )
    for (role, thread), us in sorted(per_request.items(), key=lambda item: -item[1]):
        if us >= 0.5:
            print(f"    {role:<11} {thread:<7} {us:6.1f} µs", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each setting")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per timed run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not h.have_wrk():
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-threads-"))
    data_dir = workdir / "data"
    try:
        server = h.start_strongroom(workdir, data_dir=data_dir)
        try:
            h.send_each(server.port, h.create_items(0, SECRETS), connections=args.connections)
        finally:
            server.stop()
        settings = [True, False, False, True] * args.rounds
        for audit in settings[: 2 * args.rounds]:
            one_round(args, workdir, data_dir, audit)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
