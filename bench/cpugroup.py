"""An optional CPU cgroup (v1 `cpu` controller) that every benchmark process runs in.

On a shared machine the kernel shares CPU per thread: a server with 40 busy threads (the naive
contender's thread pool) takes more of the machine from other people's work than one with three
(this service), so wall-clock rates would measure thread counts, not serving. Inside one cgroup the
whole group gets a fixed weight (`cpu.shares`) against everything else, whatever its thread count,
and only one contender (plus the load generator) runs in it at a time, so each one is offered the
same share of the machine. Needs root and a mounted v1 `cpu` hierarchy; without them the run goes on
without a group and says so in its results.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

CPU_ROOT = Path("/sys/fs/cgroup/cpu")


class CpuGroup:
    def __init__(self, shares: int, root: Path = CPU_ROOT) -> None:
        self.path = root / f"sentiment-bench-{os.getpid()}"
        self.path.mkdir()
        (self.path / "cpu.shares").write_text(str(shares))
        self.shares = shares

    def joiner(self) -> Callable[[], None]:
        """A `preexec_fn` that moves the child into the group before it execs (children inherit it)."""
        procs = str(self.path / "cgroup.procs")

        def join() -> None:
            with open(procs, "w") as fh:
                fh.write(str(os.getpid()))

        return join

    def close(self) -> None:
        # Only an empty group can be removed; every process in it was started and stopped by the run.
        with contextlib.suppress(OSError):
            self.path.rmdir()


def open_group(shares: int) -> tuple[CpuGroup | None, str]:
    """The group, or None and why not."""
    if shares <= 0:
        return None, "off"
    try:
        return CpuGroup(shares), f"cpu.shares={shares}"
    except OSError as exc:
        return None, f"unavailable ({exc.strerror or exc}): ran without a cgroup"
