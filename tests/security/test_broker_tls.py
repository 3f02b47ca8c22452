"""The whole stack over Redis with a password and TLS (rediss://, the server certificate verified):
hubs on other machines reach the broker this way."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from shared.embedded import free_port, wait_for_port
from tests.e2e.farm import start_farm
from tests.services import ServiceUrls, drop_database

PASSWORD = "s3cret-broker-password"


def _make_certificates(folder: Path) -> None:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder, timeout=60)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=phonefleet-test-ca",
    )
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"
    )
    (folder / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    )


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    server = shutil.which("redis-server")
    if server is None or shutil.which("openssl") is None:
        pytest.skip("needs redis-server (built with TLS) and openssl")
    _make_certificates(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [
            server,
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            "server.pem",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.pem",
            "--tls-auth-clients",
            "no",
            "--requirepass",
            PASSWORD,
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port("127.0.0.1", port, timeout=15)
        yield port, tmp_path / "ca.pem"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_stack_over_tls_with_a_password(services: ServiceUrls, tls_redis: tuple[int, Path], tmp_path: Path) -> None:
    port, ca = tls_redis
    base = f"rediss://:{PASSWORD}@127.0.0.1:{port}"
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis.from_url(f"{base}/0?ssl_cert_reqs=required").ping()  # an unknown CA is refused
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}").ping()  # no password
    farm = start_farm(
        services, tmp_path / "farm", 3, {"hub-tls": 2}, broker_base_url=base, broker_query=f"ssl_ca_certs={ca}"
    )
    try:
        ids = farm.create(serials=farm.hubs["hub-tls"].serials, script_name="noop", script_config={"duration": 0})
        assert [t["status"] for t in farm.wait_tasks(ids)] == [2, 2]
        stop = farm.create(serials=farm.hubs["hub-tls"].serials[:1], script_name="noop", script_config={"duration": 60})
        farm.wait(lambda: farm.task(stop[0])["status"] == 1, timeout=15, what="running")
        farm.call("POST", f"/task/{stop[0]}/stop")
        assert farm.wait_tasks(stop, timeout=10)[0]["remark"] == "stopped by user"
        assert "rediss://" in farm.hubs["hub-tls"].process.env["PHONEFLEET_BROKER_URL"]
    finally:
        farm.stop()
        drop_database(services.admin_database_url, farm.database_url)
