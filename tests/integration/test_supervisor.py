"""The supervisor restarts crashed children, stops all cleanly, and leaves no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from streams.service.supervisor import Child, Supervisor
from tests.support.workers import wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


def test_a_crashed_child_is_restarted_and_stop_ends_everything(tmp_path: Path):
    supervisor = Supervisor(tmp_path, grace=5)
    supervisor.start(Child("sleeper", SLEEPER))
    supervisor.start(Child("crasher", [sys.executable, "-c", "print('up'); raise SystemExit(3)"]))
    first = supervisor.running["crasher"].process.pid

    def restarted() -> bool:
        supervisor.poll()
        return supervisor.running["crasher"].restarts >= 1

    wait_until(restarted, timeout=10)
    assert supervisor.running["crasher"].process.pid != first
    assert (tmp_path / "crasher.log").read_text().count("up") >= 1
    sleeper = supervisor.running["sleeper"].process.pid
    started = time.monotonic()
    codes = supervisor.stop()
    assert time.monotonic() - started < 5 and codes["sleeper"] == -signal.SIGTERM
    assert not alive(sleeper)


def test_children_die_with_a_killed_supervisor(tmp_path: Path):
    script = (
        "import sys, time; from streams.service.supervisor import Child, Supervisor\n"
        "s = Supervisor()\n"
        f"[s.start(Child(f'c{{i}}', {SLEEPER!r})) for i in range(2)]\n"
        "print(' '.join(str(r.process.pid) for r in s.running.values()), flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    children = [int(pid) for pid in parent.stdout.readline().split()]  # type: ignore[union-attr]
    assert len(children) == 2 and all(alive(pid) for pid in children)
    parent.kill()
    parent.wait()
    wait_until(lambda: not any(alive(pid) for pid in children), timeout=10)
