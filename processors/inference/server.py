"""An embedded tritonserver: the binary NVIDIA ships in the PyPI package nvidia-pytriton.

``TritonServer`` prepares a backend directory (the python backend plus the
``triton_python_backend_stub`` built for the running Python), starts the binary
on the given (or free) ports with a model repository, waits until it is ready,
forwards its log, and stops it: SIGTERM, then SIGKILL of its whole process group
after a grace period. The child also gets PR_SET_PDEATHSIG, so it dies with the
process that started it. Usable as a (sync or async) context manager, and can be
started again after ``stop()`` on the same ports.

Environment of the child (see the architecture notes): LD_LIBRARY_PATH holds the
package's bundled libraries and the directory of libpython; PATH starts with this
interpreter's bin/ and PYTHONPATH holds its site-packages, so the stub's embedded
Python finds torch and numpy (< 2) of the same environment.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

logger = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
DEFAULT_MODEL_REPOSITORY = Path(__file__).resolve().parents[2] / "triton_models"


class TritonNotInstalled(FileNotFoundError):
    """The nvidia-pytriton package (the `triton` extra) is missing or incomplete."""


class TritonStartError(RuntimeError):
    """tritonserver exited or did not become ready; ``log_tail`` holds its last lines."""

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(f"{message}\n--- tritonserver log (tail) ---\n{log_tail}")
        self.log_tail = log_tail


@dataclass(frozen=True, slots=True)
class TritonDistribution:
    """Where the files of the bundled Triton live."""

    binary: Path
    python_backend: Path
    stub: Path
    libraries: Path

    @classmethod
    def locate(cls) -> TritonDistribution:
        """Find the files in the installed nvidia-pytriton, for this Python's version."""
        spec = importlib.util.find_spec("pytriton")
        if spec is None or not spec.submodule_search_locations:
            raise TritonNotInstalled("nvidia-pytriton is not installed (pip install -e '.[triton]')")
        package = Path(next(iter(spec.submodule_search_locations)))
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        found = cls(
            binary=package / "tritonserver" / "bin" / "tritonserver",
            python_backend=package / "tritonserver" / "backends" / "python",
            stub=package / "tritonserver" / "python_backend_stubs" / version / "triton_python_backend_stub",
            libraries=package.parent / "nvidia_pytriton.libs",
        )
        missing = [str(p) for p in (found.binary, found.python_backend, found.stub) if not p.exists()]
        if missing:
            raise TritonNotInstalled(f"nvidia-pytriton is incomplete, missing: {', '.join(missing)}")
        return found


@dataclass(frozen=True, slots=True)
class TritonOptions:
    """How to run the server. Ports left at 0 are picked free once, at construction
    of ``TritonServer``, and kept across restarts."""

    model_repository: Path = DEFAULT_MODEL_REPOSITORY
    host: str = "127.0.0.1"
    grpc_port: int = 0
    http_port: int = 0
    metrics_port: int = 0
    model_config_name: str | None = None  # e.g. "gpu": <model>/configs/gpu.pbtxt
    startup_timeout: float = 180.0
    stop_grace: float = 15.0
    extra_args: tuple[str, ...] = field(default_factory=tuple)


def child_environment(dist: TritonDistribution, environ: dict[str, str]) -> dict[str, str]:
    """The environment tritonserver and its python stubs need (see module docstring)."""
    env = dict(environ)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    env["LD_LIBRARY_PATH"] = _join(str(dist.libraries), libdir, environ.get("LD_LIBRARY_PATH", ""))
    env["PATH"] = _join(str(Path(sys.executable).parent), environ.get("PATH", ""))
    paths = sysconfig.get_paths()
    env["PYTHONPATH"] = _join(paths["purelib"], paths["platlib"], environ.get("PYTHONPATH", ""))
    # A __pycache__/ in the model repository's root would be read as a model.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _join(*parts: str) -> str:
    return os.pathsep.join(dict.fromkeys(p for p in parts if p))


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: ask the kernel for SIGKILL when the
    parent dies, so a crashed test or CLI leaves no tritonserver behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class TritonServer:
    """One tritonserver process over a model repository; see the module docstring."""

    def __init__(
        self,
        options: TritonOptions | None = None,
        log: Callable[[str], None] | None = None,
        dist: TritonDistribution | None = None,
    ) -> None:
        options = options or TritonOptions()
        self.options = options
        self.grpc_port = options.grpc_port or free_port(options.host)
        self.http_port = options.http_port or free_port(options.host)
        self.metrics_port = options.metrics_port or free_port(options.host)
        self._dist = dist or TritonDistribution.locate()
        self._log = log or (lambda line: logger.info("tritonserver: %s", line))
        self._tail: deque[str] = deque(maxlen=60)
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._workdir: Path | None = None

    @property
    def grpc_url(self) -> str:
        """host:port of the gRPC endpoint, as tritonclient.grpc expects it."""
        return f"{self.options.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"{self.options.host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.options.host}:{self.metrics_port}/metrics"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self, backends: Path, models: Path | None = None) -> list[str]:
        """The tritonserver command line for a prepared backend directory (and model repository)."""
        o = self.options
        args = [
            str(self._dist.binary),
            f"--model-repository={models or o.model_repository}",
            f"--backend-directory={backends}",
            f"--http-address={o.host}",
            f"--http-port={self.http_port}",
            f"--grpc-address={o.host}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-address={o.host}",
            f"--metrics-port={self.metrics_port}",
            f"--exit-timeout-secs={max(1, int(o.stop_grace) - 2)}",
        ]
        if o.model_config_name:
            args.append(f"--model-config-name={o.model_config_name}")
        return args + list(o.extra_args)

    def start(self) -> None:
        """Start the process and block until it is ready (or raise TritonStartError)."""
        self.spawn()
        self.wait_ready()

    async def astart(self) -> None:
        """Start without blocking the event loop. The process is forked from the
        loop's thread: PR_SET_PDEATHSIG fires when the forking *thread* exits."""
        import asyncio

        self.spawn()
        await asyncio.to_thread(self.wait_ready)

    def spawn(self) -> None:
        """Prepare the backend directory and start tritonserver; do not wait."""
        if self.running:
            raise RuntimeError("tritonserver is already running")
        self._workdir = Path(tempfile.mkdtemp(prefix="millstream-triton-"))
        backends = self._prepare_backends(self._workdir)
        models = self._prepare_models(self._workdir)
        self._tail.clear()
        self._process = subprocess.Popen(
            self.command(backends, models),
            env=child_environment(self._dist, dict(os.environ)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() can signal the stubs too
            preexec_fn=_die_with_parent,
        )
        self._reader = threading.Thread(target=self._forward_log, name="tritonserver-log", daemon=True)
        self._reader.start()

    def _prepare_backends(self, workdir: Path) -> Path:
        backends = workdir / "backends"
        python = backends / "python"
        shutil.copytree(self._dist.python_backend, python, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(self._dist.stub, python / "triton_python_backend_stub")
        return backends

    def _prepare_models(self, workdir: Path) -> Path:
        """A copy of the model repository without bytecode caches.

        Triton reads every directory of the repository as a model, and pip
        byte-compiles an installed package's modules into ``__pycache__/``.
        """
        models = workdir / "models"
        shutil.copytree(self.options.model_repository, models,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return models

    def _forward_log(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        for raw in process.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip()
            self._tail.append(line)
            self._log(line)

    def wait_ready(self) -> None:
        """Poll the readiness endpoint until every model is ready; fail fast if the
        process exits (a bad model repository makes tritonserver exit)."""
        deadline = time.monotonic() + self.options.startup_timeout
        url = f"http://{self.http_url}/v2/health/ready"
        while time.monotonic() < deadline:
            if not self.running:
                code = self._process.returncode if self._process else None
                self._cleanup()
                raise TritonStartError(f"tritonserver exited with code {code}", self.log_tail())
            if _answers(url):
                return
            time.sleep(0.1)
        self.stop()
        raise TritonStartError(f"not ready after {self.options.startup_timeout}s", self.log_tail())

    def log_tail(self) -> str:
        return "\n".join(self._tail)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the process group after the grace period."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(self.options.stop_grace)
            except subprocess.TimeoutExpired:
                logger.warning("tritonserver ignored SIGTERM for %ss: killing it", self.options.stop_grace)
        self._cleanup()

    def _cleanup(self) -> None:
        process = self._process
        if process is not None:
            with contextlib.suppress(ProcessLookupError):  # stubs or anything left in the group
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
        self._process, self._reader, self._workdir = None, None, None

    async def astop(self) -> None:
        import asyncio

        await asyncio.to_thread(self.stop)

    def wait(self) -> int:
        """Block until the process exits on its own; return its exit code."""
        if self._process is None:
            return 0
        return self._process.wait()

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> TritonServer:
        await self.astart()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.astop()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it; a race is possible but rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except OSError:
        return False
