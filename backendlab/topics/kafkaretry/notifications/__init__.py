"""The notification microservice of the Kafka retry notes: a consumer routes events to channels.

    Kafka topic -> NotificationConsumer (retry manager / DLT) -> NotificationRouter
                                                                  -> EmailHandler (SMTP)
                                                                  -> WebSocketHandler (pushes)

One concept per module: `events` (what an event is; bad ones are fatal), `router` (by type to a
handler), `mail` (SMTP, transient or fatal by the server's answer), `websocket` (who is connected;
offline is transient), `service` (the retry consumer running it all), `sink` (an SMTP server that
keeps what it receives, for experiments and tests). `backendlab serve notifications`
puts it behind HTTP and WebSocket endpoints.
"""

from backendlab.topics.kafkaretry.notifications.events import USER_ID, Event, parse_event, valid_user
from backendlab.topics.kafkaretry.notifications.mail import EmailHandler, compose
from backendlab.topics.kafkaretry.notifications.router import NotificationRouter
from backendlab.topics.kafkaretry.notifications.service import NotificationConsumer
from backendlab.topics.kafkaretry.notifications.sink import ReceivedEmail, SmtpSink
from backendlab.topics.kafkaretry.notifications.websocket import WebSocketHandler

__all__ = ["USER_ID", "EmailHandler", "Event", "NotificationConsumer", "NotificationRouter",
           "ReceivedEmail", "SmtpSink", "WebSocketHandler", "compose", "parse_event", "valid_user"]
