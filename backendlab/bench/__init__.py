"""Benchmarks: `python -m backendlab bench NAME [options]` prints ratios measured in one run."""

from __future__ import annotations

import importlib

BENCHES = {"ratelimit": "backendlab.bench.ratelimit"}


def main(argv: list[str]) -> int:
    """Run the benchmark named by argv[0] with the rest of argv."""
    if not argv or argv[0] not in BENCHES:
        print("usage: backendlab bench NAME [options]\nbenchmarks: "
              + ", ".join(sorted(BENCHES)))
        return 2
    return importlib.import_module(BENCHES[argv[0]]).main(argv[1:])
