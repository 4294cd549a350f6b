"""The suite's command line, `.venv/bin/backendlab COMMAND` (or `backendlab` in the activated venv,
or `python -m backendlab`): with no command it lists the commands, one line each."""

from __future__ import annotations

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
        print("usage: backendlab serve NAME --port N [options]\nservers: "
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
    """`bench NAME`: the benchmark in topic NAME's package (`bench.py`)."""
    from backendlab import catalog

    benches = {t.slug: t for t in catalog.built() if t.has("bench")}
    if not argv or argv[0] not in benches:
        print("usage: backendlab bench NAME [options]\nbenchmarks: " + ", ".join(sorted(benches)))
        return 2
    return benches[argv[0]].module("bench").main(argv[1:])


def _kafka_replay(argv: list[str]) -> int:
    from backendlab.topics.kafkaretry.replay import main

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


COMMANDS = {
    "lab": (_lab, "JupyterLab on your copies in my-work/, opening notebook 00 (make lab)"),
    "refresh": (_refresh, "a fresh copy of one notebook and its lab in my-work/ (make refresh NB=01)"),
    "progress": (_progress, "where quiz progress is kept, your answers per quiz; --reset"),
    "doctor": (_doctor, "each service: real or embedded, address, version, reachable"),
    "serve": (_serve, "run an experiment server from a shell: serve NAME --port N [options]"),
    "labs": (_labs, "regenerate labs/ from solutions/; --check compares instead"),
    "bench": (_bench, "bench ratelimit: the suite's Redis limiter against the limits library"),
    "kafka-replay": (_kafka_replay, "move dead letters back to their topic, paced"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "usage: backendlab COMMAND [options]   (COMMAND --help for its options)\n\ncommands:\n" \
        + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):
        print(usage())
        return 0
    if not argv or argv[0] not in COMMANDS:
        if argv:
            print(f"unknown command {argv[0]!r}")
        print(usage())
        return 2
    command, _ = COMMANDS[argv[0]]
    return command(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
