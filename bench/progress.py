"""Progress lines on stderr while the bench runs: elapsed time, the figure, what it is doing."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, quiet: bool = False) -> None:
        self.started = time.monotonic()
        self.quiet = quiet
        self.figure = "bench"

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        elapsed = int(time.monotonic() - self.started)
        print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {self.figure}: {message}", file=sys.stderr, flush=True)
