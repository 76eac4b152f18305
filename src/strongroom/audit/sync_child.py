"""The audit journal's syncer process (see ``syncer.py``): run as a script, imports only
what the standard library starts with."""

import os
import signal
import sys


def serve() -> None:
    """The child: answer sync requests from stdin until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    current: tuple[bytes, int] | None = None
    for line in sys.stdin.buffer:
        path, _, end = line.rstrip(b"\n").rpartition(b"\t")
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
        os.write(1, answer + b"\n")


if __name__ == "__main__":
    serve()
