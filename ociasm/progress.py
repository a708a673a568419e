"""Progress reporting: a live display on a TTY, plain lines otherwise, silence when quiet.

Code that does work takes a `Progress` and calls `step`, `warn` and `task`; it never
prints. Errors are not progress: the CLI prints them, whatever the mode.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Iterator, TextIO

MODES = ("auto", "tty", "plain", "quiet")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class Task:
    """Bytes moved for one named piece of work (a pull, a layer write, a load)."""

    def __init__(self, progress: "Progress", name: str, total: int | None) -> None:
        self.progress, self.name, self.total, self.done = progress, name, total, 0

    def advance(self, n: int) -> None:
        self.done += n
        self.progress._update(self)


class Progress:
    """Plain-line progress; the base for the other modes."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self._started = time.monotonic()

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self._started:5.1f}s"

    def step(self, message: str) -> None:
        self._line(f"[{self._elapsed()}] {message}")

    def warn(self, message: str) -> None:
        self._line(f"warning: {message}")

    def _line(self, text: str) -> None:
        # One write per line: pushes report from several threads, and print() writes the end apart.
        self.out.write(text + "\n")
        self.out.flush()

    def _update(self, task: Task) -> None:
        pass

    def _finish(self, task: Task, seconds: float) -> None:
        self.step(f"{task.name}: {human_bytes(task.done)} in {seconds:.2f}s")

    @contextmanager
    def task(self, name: str, total: int | None = None) -> Iterator[Task]:
        task = Task(self, name, total)
        start = time.monotonic()
        yield task
        self._finish(task, time.monotonic() - start)

    def close(self) -> None:
        pass


class QuietProgress(Progress):
    def step(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def _finish(self, task: Task, seconds: float) -> None:
        pass


class TtyProgress(Progress):
    """A rich live display: one bar per running task with its bytes."""

    def __init__(self, out: TextIO | None = None) -> None:
        super().__init__(out)
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress as RichProgress,
                                   TextColumn, TimeElapsedColumn, TransferSpeedColumn)
        self._console = Console(file=self.out)
        self._rich = RichProgress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), TimeElapsedColumn(),
                                  console=self._console, transient=True)
        self._rich.start()

    def step(self, message: str) -> None:
        self._console.print(f"[dim]{self._elapsed()}[/dim] {message}", highlight=False)

    def warn(self, message: str) -> None:
        self._console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)

    @contextmanager
    def task(self, name: str, total: int | None = None) -> Iterator[Task]:
        rid = self._rich.add_task(name, total=total)
        try:
            with super().task(name, total) as task:
                task._rid = rid  # type: ignore[attr-defined]
                yield task
        finally:
            self._rich.remove_task(rid)

    def _update(self, task: Task) -> None:
        self._rich.update(task._rid, completed=task.done)  # type: ignore[attr-defined]

    def close(self) -> None:
        self._rich.stop()


def make_progress(mode: str | None) -> Progress:
    """`mode` as given on the command line; None falls back to BUILDKIT_PROGRESS, then auto."""
    mode = mode or os.environ.get("BUILDKIT_PROGRESS") or "auto"
    if mode not in MODES:
        mode = "auto"
    if mode == "auto":
        mode = "tty" if sys.stderr.isatty() else "plain"
    return {"tty": TtyProgress, "plain": Progress, "quiet": QuietProgress}[mode]()
