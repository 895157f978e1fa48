"""``millstream triton`` serves in the foreground and leaves nothing behind on SIGTERM."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from processors.inference.server import DEFAULT_MODEL_REPOSITORY, TritonDistribution, free_port


def small_repository(root: Path) -> Path:
    """Only inpaint_short (and the shared modules): one model starts faster."""
    root.mkdir()
    for shared in DEFAULT_MODEL_REPOSITORY.glob("*.py"):
        shutil.copy2(shared, root / shared.name)
    shutil.copytree(DEFAULT_MODEL_REPOSITORY / "inpaint_short", root / "inpaint_short")
    return root


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue  # exited while we looked
    return found


def lines_of(process: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    return lines


def test_millstream_triton_serves_until_sigterm_and_leaves_no_process(
    triton_dist: TritonDistribution, tmp_path: Path
) -> None:
    repository = small_repository(tmp_path / "repository")
    http = free_port()
    command = [sys.executable, "-m", "streams", "triton", "--model-repository", str(repository)]
    command += ["--grpc-port", str(free_port()), "--http-port", str(http), "--metrics-port", str(free_port())]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = lines_of(process)
        assert "tritonserver ready" in lines.get(timeout=120)
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/models/inpaint_short/ready") as answer:
            assert answer.status == 200
        assert processes_mentioning(str(repository))

        process.send_signal(signal.SIGTERM)

        assert process.wait(timeout=60) == 0
        assert processes_mentioning(str(repository)) == []
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
