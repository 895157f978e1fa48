"""rediss://: a worker process runs end to end over TLS against a redis-server with a certificate of our CA.

The CA, the server's certificate (for 127.0.0.1) and a client certificate are made with the
``openssl`` CLI in the test's temporary directory; the redis-server listens on a TLS port only.
The URL options are redis-py's (docs/operations/redis-acl.md, "TLS").
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from streams.redis.connection import connect
from streams.redis.keys import Keys
from streams.redis.publisher import Publisher
from streams.settings import Settings
from tests.conftest import require_tool
from tests.support.pipelines import wait_for
from tests.support.redis_server import free_port
from tests.support.workers import WorkerProcess, wait_until

PASSWORD = "tls-pw"


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str | Path) -> None:
    subprocess.run([require_tool("openssl"), *map(str, args)], check=True, capture_output=True, timeout=60)


def _signed(directory: Path, name: str, subject: str, ca: Path, ca_key: Path, extensions: str) -> tuple[Path, Path]:
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.pem"
    ext = directory / f"{name}.ext"
    ext.write_text(extensions)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
             "-out", csr, "-subj", subject)
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
             "-days", "1", "-extfile", ext)
    return cert, key


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    d = tmp_path_factory.mktemp("tls")
    ca, ca_key = d / "ca.pem", d / "ca.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", ca_key, "-out", ca, "-days", "1", "-subj", "/CN=millstream test CA")
    server = _signed(d, "server", "/CN=127.0.0.1", ca, ca_key,
                     "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    client = _signed(d, "client", "/CN=millstream", ca, ca_key, "extendedKeyUsage=clientAuth\n")
    return Certificates(ca, *server, *client)


def _tls_server(directory: Path, certs: Certificates, auth_clients: str) -> Iterator[int]:
    binary = require_tool("redis-server")
    port = free_port()
    process = subprocess.Popen([
        binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
        "--tls-cert-file", str(certs.server_cert), "--tls-key-file", str(certs.server_key),
        "--tls-ca-cert-file", str(certs.ca), "--tls-auth-clients", auth_clients,
        "--requirepass", PASSWORD, "--save", "", "--appendonly", "no", "--logfile", str(directory / "redis.log"),
    ])
    try:
        yield port
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def tls_port(tmp_path: Path, certificates: Certificates) -> Iterator[int]:
    yield from _tls_server(tmp_path, certificates, "no")


@pytest.fixture
def mtls_port(tmp_path: Path, certificates: Certificates) -> Iterator[int]:
    yield from _tls_server(tmp_path, certificates, "yes")


def url(port: int, query: str) -> str:
    return f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?{query}"


async def publish_and_count(redis_url: str, pipeline: str, n: int) -> None:
    redis = connect(Settings(redis_url=redis_url))
    keys = Keys("mst", pipeline)
    try:
        await Publisher(redis, keys).publish_many("in", [({"n": i}, f"r{i}") for i in range(n)])

        async def copied() -> bool:
            return bool(await redis.xlen(keys.stream("out")) == n)

        await wait_for(copied, timeout=20)
    finally:
        await redis.aclose()


def wait_for_server(redis_url: str) -> None:
    async def ping() -> bool:
        redis = connect(Settings(redis_url=redis_url))
        try:
            return bool(await redis.ping())
        except (OSError, RedisConnectionError):  # not listening yet
            return False
        finally:
            await redis.aclose()

    wait_until(lambda: asyncio.run(ping()), timeout=10)


def run_worker(redis_url: str, tmp_path: Path, pipeline: str, consumer: str) -> None:
    worker = WorkerProcess(redis_url, pipeline, consumer, tmp_path)
    try:
        asyncio.run(publish_and_count(redis_url, pipeline, 20))
    finally:
        worker.signal(signal.SIGTERM)
        code = worker.wait(30)
    assert code == 0, worker.log()[-3000:]


def test_a_worker_runs_the_pipeline_over_tls_trusting_our_ca(tls_port: int, certificates: Certificates,
                                                             tmp_path: Path, pipeline_name: str):
    tls_url = url(tls_port, f"ssl_ca_certs={certificates.ca}")
    wait_for_server(tls_url)
    run_worker(tls_url, tmp_path, pipeline_name, "c-tls")


def test_a_worker_presents_its_client_certificate_where_the_server_requires_one(
        mtls_port: int, certificates: Certificates, tmp_path: Path, pipeline_name: str):
    mtls_url = url(mtls_port, f"ssl_ca_certs={certificates.ca}&ssl_certfile={certificates.client_cert}"
                              f"&ssl_keyfile={certificates.client_key}")
    wait_for_server(mtls_url)
    run_worker(mtls_url, tmp_path, pipeline_name, "c-mtls")
    without = connect(Settings(redis_url=url(mtls_port, f"ssl_ca_certs={certificates.ca}")))

    async def refused() -> None:
        try:
            with pytest.raises((RedisConnectionError, OSError)):  # the server drops the handshake
                await without.ping()
        finally:
            await without.aclose()

    asyncio.run(refused())


def test_a_worker_that_does_not_trust_the_certificate_stops_with_the_reason_and_no_password(
        tls_port: int, certificates: Certificates, tmp_path: Path, pipeline_name: str):
    wait_for_server(url(tls_port, f"ssl_ca_certs={certificates.ca}"))
    worker = WorkerProcess(url(tls_port, "ssl_cert_reqs=required"), pipeline_name, "c-untrusted", tmp_path)
    code = worker.wait(30)
    log = worker.log()
    assert code != 0
    assert "certificate verify failed" in log, log[-2000:]
    assert PASSWORD not in log
