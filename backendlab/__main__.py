"""Command line: `backendlab lab | refresh NN | doctor | serve NAME | labs [--check] | bench NAME |
kafka-replay --dlt TOPIC` (`.venv/bin/backendlab`, or `python -m backendlab` in the venv)."""

from __future__ import annotations

import argparse
import sys


def _doctor(_: list[str]) -> int:
    from backendlab.services import doctor, stop_embedded

    report = doctor()
    print(report)
    stop_embedded()
    if not report.ok:
        print("\nA service does not answer: the note in its row says how to fix it.")
    return 0 if report.ok else 1


def _serve(argv: list[str]) -> int:
    from backendlab import servers

    if not argv or argv[0].startswith("-"):
        print("usage: python -m backendlab serve NAME --port N [options]\nservers: "
              + ", ".join(sorted(servers.SERVERS)))
        return 2
    if argv[0] not in servers.SERVERS:
        print(f"unknown server {argv[0]!r}; servers: {', '.join(sorted(servers.SERVERS))}")
        return 2
    servers.serve(argv[0], argv[1:])
    return 0


def _labs(argv: list[str]) -> int:
    from backendlab import labs

    return labs.main(argv)


def _bench(argv: list[str]) -> int:
    from backendlab import bench

    return bench.main(argv)


def _kafka_replay(argv: list[str]) -> int:
    from backendlab.kafkaretry.replay import main

    return main(argv)


def _lab(argv: list[str]) -> int:
    from backendlab.launcher import main_lab

    return main_lab(argv)


def _refresh(argv: list[str]) -> int:
    from backendlab.launcher import main_refresh

    return main_refresh(argv)


def _progress(argv: list[str]) -> int:
    from backendlab.quiz.cli import main

    return main(argv)


COMMANDS = {"lab": _lab, "refresh": _refresh, "doctor": _doctor, "serve": _serve, "labs": _labs, "bench": _bench,
            "kafka-replay": _kafka_replay, "progress": _progress}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m backendlab", description=__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS))
    if argv[:1] in (["-h"], ["--help"]):
        parser.print_help()
        return 0
    if not argv or argv[0] not in COMMANDS:
        parser.print_help()
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
