"""Progress of a study run on stderr: a tqdm bar on a terminal, log lines otherwise.

Chunks can run for hours, so the meter also moves *inside* a chunk: a heartbeat thread
(every `KURALAB_PROGRESS_INTERVAL` seconds: default 1 on a terminal, 30 in logs)
advances the bar by the fraction of the next chunk expected to be done, extrapolated
from the mean time per chunk of this run (before the first chunk finishes it shows the
time elapsed), and in logs prints a `running` line. This is a time-based estimate made
on the host: the compiled chunk itself has no host callback (a callback would keep it
out of JAX's persistent compilation cache).
"""

from __future__ import annotations

import os
import sys
import threading
import time

__all__ = ["_Progress", "_say"]

#: Environment variable: seconds between heartbeat updates inside a chunk.
INTERVAL_ENV = "KURALAB_PROGRESS_INTERVAL"


def _say(name: str, enabled: bool, message: str) -> None:
    if enabled:
        print(f"[{name}] {message}", file=sys.stderr, flush=True)


class _Progress:
    """A tqdm bar on a terminal, one log line per chunk otherwise, or nothing."""

    def __init__(
        self,
        name: str,
        chunks: list[slice],
        done: set[int],
        enabled: bool,
        summary: str | None = None,
    ):
        self.name = name
        self.chunks = chunks
        self.size = chunks[-1].stop
        self.enabled = enabled
        self.done = len(done)
        self.points = sum(chunks[i].stop - chunks[i].start for i in done)
        self.computed = 0  # points computed by this run (for the rate)
        self.start = self.last = time.perf_counter()
        self.finished_here = 0  # chunks finished by this run
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.bar = None
        if not enabled:
            return
        if self.done:
            self.say(
                f"resuming: {self.done} of {len(chunks)} chunks ({self.points} of "
                f"{self.size} points) already finished"
                + (f"; {summary}" if summary else "")
            )
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=len(chunks),
                initial=self.done,
                desc=name,
                unit="chunk",
                file=sys.stderr,
                dynamic_ncols=True,
                postfix=self._points(),
            )

    def _points(self) -> str:
        return f"{self.points}/{self.size} points"

    def say(self, message: str) -> None:
        if self.bar is not None:
            self.bar.write(f"[{self.name}] {message}", file=sys.stderr)
        else:
            _say(self.name, self.enabled, message)

    def update(self, i: int) -> None:
        count = self.chunks[i].stop - self.chunks[i].start
        self.done += 1
        self.points += count
        self.computed += count
        self.finished_here += 1
        self.last = time.perf_counter()
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.n = self.done
            self.bar.set_postfix_str(self._points(), refresh=False)
            self.bar.refresh()
            return
        elapsed = time.perf_counter() - self.start
        rate = self.computed / elapsed if elapsed > 0 else float("inf")
        eta = (self.size - self.points) / rate if rate > 0 else float("inf")
        self.say(
            f"chunk {self.done}/{len(self.chunks)} ({self._points()}) {elapsed:.1f} s "
            f"elapsed, {rate:.2f} points/s, ETA {eta:.0f} s"
        )

    # -- inside a chunk -----------------------------------------------------------

    def _interval(self) -> float:
        raw = os.environ.get(INTERVAL_ENV)
        try:
            value = float(raw) if raw else (1.0 if self.bar is not None else 30.0)
        except ValueError:
            value = 30.0
        return value if value > 0 else 30.0

    def beat(self) -> str | None:
        """One heartbeat: the expected progress of the chunk(s) running now."""
        now = time.perf_counter()
        since = now - self.last
        if self.finished_here:
            mean = (self.last - self.start) / self.finished_here
            fraction = min(0.99, since / mean) if mean > 0 else 0.0
            text = (
                f"chunk {self.done + 1}/{len(self.chunks)} running, {since:.0f} s in "
                f"(~{100 * fraction:.0f}% at the mean {mean:.0f} s per chunk so far)"
            )
        else:
            fraction = 0.0
            text = (
                f"chunk {self.done + 1}/{len(self.chunks)} running, {since:.0f} s in "
                "(the first chunk also compiles)"
            )
        if self.bar is not None:
            self.bar.n = self.done + fraction
            self.bar.set_postfix_str(f"{self._points()}, {since:.0f} s in chunk")
            return text
        self.say(text)
        return text

    def _heartbeat(self) -> None:
        interval = self._interval()
        while not self._stop.wait(interval):
            if self.done >= len(self.chunks):
                return
            self.beat()

    def start_heartbeat(self) -> None:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._heartbeat, daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None
