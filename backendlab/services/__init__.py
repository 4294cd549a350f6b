"""Services the experiments use, real when configured and embedded otherwise.

    from backendlab.services import redis_url, kafka_bootstrap, s3_endpoint, database_url
"""

from backendlab.services.base import ServiceInfo, ServiceUnavailable
from backendlab.services.doctor import SERVICES, doctor
from backendlab.services.kafka import kafka_bootstrap
from backendlab.services.redis import redis_client, redis_url
from backendlab.services.s3 import s3_client, s3_endpoint
from backendlab.services.sql import database_url, sql_connect


def stop_embedded() -> None:
    """Stop every embedded service this process started."""
    for service in SERVICES:
        service.stop()


__all__ = [
    "ServiceInfo", "ServiceUnavailable", "database_url", "doctor", "kafka_bootstrap",
    "redis_client", "redis_url", "s3_client", "s3_endpoint", "sql_connect", "stop_embedded",
]
