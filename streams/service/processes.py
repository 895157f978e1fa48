"""Stopping a child process: SIGTERM, then SIGKILL when it outlives the grace period."""

from __future__ import annotations

import subprocess


def terminate(process: subprocess.Popen[bytes] | subprocess.Popen[str], grace: float = 10.0) -> int:
    """Stop ``process`` (if it still runs) and reap it; return its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
