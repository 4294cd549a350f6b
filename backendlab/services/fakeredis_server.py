"""Runs fakeredis's TCP server as its own process: `python -m backendlab.services.fakeredis_server --port N`.

Its own process, because inside a kernel it would compete with the notebook for the GIL.
"""

import argparse

import redis
from fakeredis import TcpFakeServer
from fakeredis._clients._tcp_server import TCPFakeRequestHandler


class ErrorReplyHandler(TCPFakeRequestHandler):
    """Sends a command's error as an error reply instead of closing the connection.

    fakeredis 2.40's handler closes the connection when an error reply surfaces as an exception,
    which happens by timing; redis-py's scripts rely on NOSCRIPT replies, so they failed at random.
    """

    def setup(self) -> None:
        super().setup()
        read_response = self.current_client.read_response

        def read_response_or_error(*args, **kwargs):
            try:
                return read_response(*args, **kwargs)
            except redis.ResponseError as exc:
                return exc

        self.current_client.read_response = read_response_or_error


class BurstServer(TcpFakeServer):
    """fakeredis's TCP server with a listen backlog for bursts: with socketserver's default of 5,
    the sixth of many clients connecting at once waits a second for its SYN to be retried."""

    request_queue_size = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = BurstServer(("127.0.0.1", args.port), server_type="redis")
    server.RequestHandlerClass = ErrorReplyHandler
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
