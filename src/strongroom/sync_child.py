"""The audit journal's syncer (see ``audit/syncer.py``): run as a script by a worker, or in
a thread of the supervisor. Outside the ``audit`` package and on the standard library only,
so that neither the script nor the supervisor loads anything else."""

import os
import signal
import sys
from typing import BinaryIO, Final

SYNC_FD_VARIABLE: Final = "STRONGROOM_SYNC_FD"  # set by the supervisor for its workers


def serve(requests: BinaryIO, answers: int) -> None:
    """Answer the sync requests read from ``requests`` on ``answers`` until it ends."""
    current: tuple[bytes, int] | None = None
    for line in requests:
        hex_path, _, end = line.rstrip(b"\n").partition(b" ")
        path = bytes.fromhex(hex_path.decode())
        try:
            if current is None or current[0] != path:
                if current is not None:
                    os.close(current[1])
                    current = None
                current = (path, os.open(path, os.O_RDONLY | os.O_CLOEXEC))
                folder = os.path.dirname(path) or b"."  # noqa: PTH120 - bytes, no pathlib here
                directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)
            os.fdatasync(current[1])
            answer = b"ok " + end
        except OSError as exc:
            answer = b"err %d" % (exc.errno or 5)  # EIO when the error names none
        os.write(answers, answer + b"\n")
    if current is not None:
        os.close(current[1])


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.stdin.buffer, 1)
