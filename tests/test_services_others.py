"""Kafka, S3 and SQL services: the same assertions real (where this machine has one) and embedded."""

import asyncio
import os

import httpx
import pytest

from backendlab import processes
from backendlab.services.base import ServiceUnavailable
from backendlab.services.kafka import KafkaService
from backendlab.services.s3 import S3Service, credentials
from backendlab.services.sql import SQLService, connect
from conftest import REAL_DATABASE_URL, need_real


def embedded(env, service):
    env.setenv("BACKENDLAB_EMBEDDED", "1")
    return service


def real_if_given(env, service):
    """Use the real service named in BACKENDLAB_TEST_<VAR> when set, else the embedded one."""
    real = os.environ.get(f"BACKENDLAB_TEST_{service.env_var}")
    if real:
        env.setenv(service.env_var, real)
    else:
        embedded(env, service)
    return service


@pytest.fixture
def kafka(clean_service_env):
    svc = real_if_given(clean_service_env, KafkaService())
    yield svc
    svc.stop()


def test_kafka_round_trip_with_key_header_and_commit(kafka, unique):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    bootstrap = kafka.address()

    async def scenario():
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(unique, num_partitions=1, replication_factor=1)])
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        await producer.send_and_wait(unique, b"hello", key=b"user-1", headers=[("kind", b"greeting")])
        await producer.stop()
        consumer = AIOKafkaConsumer(unique, bootstrap_servers=bootstrap, group_id=unique,
                                    auto_offset_reset="earliest", enable_auto_commit=False,
                                    session_timeout_ms=2000, heartbeat_interval_ms=500)
        await consumer.start()
        message = await asyncio.wait_for(consumer.getone(), 15)
        await consumer.commit()
        committed = await consumer.committed(TopicPartition(unique, 0))
        await consumer.stop()
        await admin.delete_topics([unique])
        await admin.close()
        return message, committed

    message, committed = asyncio.run(scenario())
    assert (message.key, message.value, message.headers) == (b"user-1", b"hello", (("kind", b"greeting"),))
    assert committed == 1


def test_kafka_embedded_is_tansu_on_loopback(clean_service_env):
    svc = embedded(clean_service_env, KafkaService())
    try:
        info = svc.info()
        assert (info.mode, info.reachable) == ("embedded", True)
        assert info.address.startswith("127.0.0.1:") and "tansu" in info.version
        port = int(info.address.rsplit(":", 1)[1])
    finally:
        svc.stop()
    assert not processes.port_open("127.0.0.1", port)


@pytest.fixture
def s3(clean_service_env):
    svc = real_if_given(clean_service_env, S3Service())
    yield svc
    svc.stop()


def test_s3_objects_and_presigned_get(s3, unique):
    import boto3

    client = boto3.client("s3", endpoint_url=s3.address(), **credentials())
    client.create_bucket(Bucket=unique)
    try:
        client.put_object(Bucket=unique, Key="a.txt", Body=b"payload")
        url = client.generate_presigned_url("get_object", Params={"Bucket": unique, "Key": "a.txt"},
                                            ExpiresIn=60)
        assert httpx.get(url).content == b"payload"
    finally:
        client.delete_object(Bucket=unique, Key="a.txt")
        client.delete_bucket(Bucket=unique)


@pytest.fixture(params=["real", "embedded"])
def sql(request, clean_service_env):
    svc = SQLService()
    if request.param == "real":
        clean_service_env.setenv("DATABASE_URL", REAL_DATABASE_URL)
        need_real(svc, REAL_DATABASE_URL)
    else:
        embedded(clean_service_env, svc)
    svc.expected_mode = request.param
    yield svc
    svc.stop()


def test_sql_create_insert_select(sql, unique):
    assert sql.mode() == sql.expected_mode
    conn = connect(sql.address())
    try:
        conn.execute(f"create table {unique} (id integer primary key, name text)")
        conn.execute(f"insert into {unique} (id, name) values (1, 'ada'), (2, 'linus')")
        rows = conn.execute(f"select name from {unique} order by id").fetchall()
        assert [row[0] for row in rows] == ["ada", "linus"]
    finally:
        conn.rollback()
        conn.execute(f"drop table if exists {unique}")
        conn.commit()
        conn.close()


def test_sql_embedded_file_is_removed_on_stop(clean_service_env):
    svc = embedded(clean_service_env, SQLService())
    path = svc.address().removeprefix("sqlite:///")
    connect(svc.address()).execute("create table t (x)").connection.commit()
    assert os.path.exists(path)
    svc.stop()
    assert not os.path.exists(os.path.dirname(path))


@pytest.mark.parametrize("service_class, var, url, fix", [
    (SQLService, "DATABASE_URL", "postgresql://nobody@127.0.0.1:{port}/x", "docker compose up -d postgres"),
    (S3Service, "S3_ENDPOINT_URL", "http://127.0.0.1:{port}", "docker compose up -d minio"),
    (KafkaService, "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:{port}", "docker compose up -d kafka"),
])
def test_configured_but_down_gives_one_clear_message(clean_service_env, service_class, var, url, fix):
    address = url.format(port=processes.free_port())
    clean_service_env.setenv(var, address)
    with pytest.raises(ServiceUnavailable) as caught:
        service_class().address()
    assert f"{var}={address} does not answer" in str(caught.value)
    assert fix in str(caught.value)
