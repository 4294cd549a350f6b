"""docker-compose.yml cannot run here (no Docker engine), so it is validated instead.

Checks: the Compose Specification schema, depends_on naming defined services, a healthcheck on
every service, ports published on 127.0.0.1 only, and the addresses in services.env (what
`make services` hands the suite) matching the published ports.
"""

import json
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "tests/data/compose-spec.schema.json").read_text())


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def problems(compose: dict) -> list[str]:
    """Everything wrong with a compose document, as sentences; empty when it is valid."""
    found = [f"schema: {'/'.join(map(str, e.path))}: {e.message}"
             for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(compose)]
    services = compose.get("services", {}) or {}
    for name, service in services.items():
        for dep in service.get("depends_on", []) or []:
            if dep not in services:
                found.append(f"{name}: depends_on names undefined service {dep!r}")
        if "healthcheck" not in service:
            found.append(f"{name}: no healthcheck")
        for port in service.get("ports", []) or []:
            if not str(port).startswith("127.0.0.1:"):
                found.append(f"{name}: port {port!r} is not bound to 127.0.0.1")
    return found


def published_ports(compose: dict) -> dict[int, str]:
    ports = {}
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            ports[int(str(port).split(":")[1])] = name
    return ports


def env_file() -> dict[str, str]:
    values = {}
    for line in (ROOT / "services.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value
    return values


def test_compose_file_is_valid():
    assert problems(load_compose()) == []


@pytest.mark.parametrize("breakage, expected", [
    (lambda c: c["services"]["redis"].update(ports=["6379:6379"]), "not bound to 127.0.0.1"),
    (lambda c: c["services"]["redis"].pop("healthcheck"), "no healthcheck"),
    (lambda c: c["services"]["kafka"].update(depends_on=["zookeeper"]), "undefined service"),
    (lambda c: c["services"]["minio"].update(restart_policy="always"), "schema"),
])
def test_validation_catches_mistakes(breakage, expected):
    compose = load_compose()
    breakage(compose)
    assert any(expected in problem for problem in problems(compose))


def test_required_services_with_the_named_images():
    services = load_compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["minio"]["image"].startswith("minio/minio:")


def test_services_env_matches_published_ports():
    ports = published_ports(load_compose())
    env = env_file()
    expected = {
        "REDIS_URL": "redis", "KAFKA_BOOTSTRAP_SERVERS": "kafka",
        "S3_ENDPOINT_URL": "minio", "DATABASE_URL": "postgres",
    }
    for var, service in expected.items():
        value = env[var]
        parsed = urlparse(value if "://" in value else f"kafka://{value}")
        assert parsed.hostname == "127.0.0.1", var
        assert ports.get(parsed.port) == service, f"{var} port {parsed.port} is not {service}'s"
    minio = load_compose()["services"]["minio"]["environment"]
    assert env["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    pg = load_compose()["services"]["postgres"]["environment"]
    db = urlparse(env["DATABASE_URL"])
    assert (db.username, db.password, db.path.lstrip("/")) == (
        pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"])
