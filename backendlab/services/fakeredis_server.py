"""Runs fakeredis's TCP server as its own process: `python -m backendlab.services.fakeredis_server --port N`.

Its own process, because inside a kernel it would compete with the notebook for the GIL.
"""

import argparse

from fakeredis import TcpFakeServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = TcpFakeServer(("127.0.0.1", args.port), server_type="redis")
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
