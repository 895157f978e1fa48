"""The launcher's command line and child environment, without starting anything."""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

import pytest

from processors.inference.server import TritonDistribution, TritonOptions, TritonServer, child_environment

FAKE = TritonDistribution(
    binary=Path("/opt/t/bin/tritonserver"),
    python_backend=Path("/opt/t/backends/python"),
    stub=Path("/opt/t/stubs/3.11/triton_python_backend_stub"),
    libraries=Path("/opt/nvidia_pytriton.libs"),
)


def test_the_child_finds_the_bundled_libraries_libpython_and_this_environment() -> None:
    env = child_environment(FAKE, {"PATH": "/usr/bin", "LD_LIBRARY_PATH": "/x", "PYTHONPATH": "/p"})

    libraries = env["LD_LIBRARY_PATH"].split(os.pathsep)
    assert libraries[:2] == [str(FAKE.libraries), sysconfig.get_config_var("LIBDIR")]
    assert libraries[-1] == "/x"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert sysconfig.get_paths()["purelib"] in env["PYTHONPATH"].split(os.pathsep)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_the_command_names_the_repository_ports_and_alternate_config() -> None:
    options = TritonOptions(
        model_repository=Path("/repo"),
        grpc_port=9001,
        http_port=9000,
        metrics_port=9002,
        model_config_name="gpu",
    )
    server = TritonServer(options, dist=FAKE)

    command = server.command(Path("/work/backends"))

    assert command[0] == str(FAKE.binary)
    for flag in (
        "--model-repository=/repo",
        "--backend-directory=/work/backends",
        "--grpc-port=9001",
        "--http-port=9000",
        "--metrics-port=9002",
        "--model-config-name=gpu",
    ):
        assert flag in command
    assert server.grpc_url == "127.0.0.1:9001"


def test_ports_left_at_zero_are_picked_free_and_distinct() -> None:
    server = TritonServer(TritonOptions(), dist=FAKE)

    ports = {server.grpc_port, server.http_port, server.metrics_port}

    assert len(ports) == 3 and all(port > 0 for port in ports)


def test_the_installed_distribution_is_found_for_this_python() -> None:
    try:
        found = TritonDistribution.locate()
    except FileNotFoundError:
        pytest.skip("nvidia-pytriton is not installed")

    assert found.binary.is_file() and os.access(found.binary, os.X_OK)
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in str(found.stub)
