"""Supervisor: run child processes (workers, servers) as one unit.

A child that exits unexpectedly is restarted with capped backoff; ``stop()``
sends SIGTERM to every child and SIGKILL to those still running after the
grace period. Children get PR_SET_PDEATHSIG (Linux), so they receive SIGTERM
even when the supervisor itself is killed with SIGKILL: no orphans.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("millstream.supervisor")
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(frozen=True, slots=True)
class Child:
    name: str
    command: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    restart: bool = True


class _Running:
    def __init__(self, child: Child, log_dir: Path | None) -> None:
        self.child = child
        self.restarts = 0
        self.log_dir = log_dir
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.child.env}
        if self.log_dir is None:
            return subprocess.Popen(list(self.child.command), env=env, preexec_fn=_die_with_parent)
        with (self.log_dir / f"{self.child.name}.log").open("ab") as out:  # the child keeps its own copy
            return subprocess.Popen(list(self.child.command), env=env, stdout=out, stderr=subprocess.STDOUT,
                                    preexec_fn=_die_with_parent)

    def restart(self) -> None:
        self.restarts += 1
        self.process = self._start()


class Supervisor:
    def __init__(self, log_dir: Path | None = None, grace: float = 30.0, max_backoff: float = 30.0) -> None:
        self.log_dir, self.grace, self.max_backoff = log_dir, grace, max_backoff
        self.running: dict[str, _Running] = {}
        self._due: dict[str, float] = {}
        self.stopping = False
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, child: Child) -> None:
        if child.name in self.running:
            raise ValueError(f"a child called {child.name!r} already runs")
        self.running[child.name] = _Running(child, self.log_dir)
        log.info("started %s (pid %d)", child.name, self.running[child.name].process.pid)

    def poll(self) -> None:
        """Restart children that died, with backoff; call it every second or so."""
        now = time.monotonic()
        for name, run in self.running.items():
            code = run.process.poll()
            if code is None or self.stopping or not run.child.restart:
                continue
            if name not in self._due:
                delay = min(self.max_backoff, 0.5 * 2 ** min(run.restarts, 10))
                self._due[name] = now + delay
                log.warning("%s exited with %s; restarting in %.1fs", name, code, delay)
            elif now >= self._due[name]:
                del self._due[name]
                run.restart()

    def exited(self) -> dict[str, int]:
        """Children that have exited and will not be restarted, with their exit codes."""
        return {name: code for name, run in self.running.items()
                if (code := run.process.poll()) is not None and not run.child.restart}

    def stop(self) -> dict[str, int]:
        """SIGTERM everything, SIGKILL what outlives the grace period; return exit codes."""
        self.stopping = True
        for run in self.running.values():
            if run.process.poll() is None:
                run.process.terminate()
        deadline = time.monotonic() + self.grace
        codes = {}
        for name, run in self.running.items():
            try:
                codes[name] = run.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", name, self.grace)
                run.process.kill()
                codes[name] = run.process.wait()
        return codes
