"""Start the local world by hand: ``python -m tests.world [folder]``; Ctrl-C stops it."""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from pathlib import Path

from tests.world.local import local_world


def main() -> None:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="world-"))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with local_world(directory) as world:
        print(world.describe(), flush=True)
        print("running; Ctrl-C stops everything", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
