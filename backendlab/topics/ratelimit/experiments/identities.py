"""Experiment 5: whom to count. Limiting by IP behind a proxy (the socket peer, a spoofable
X-Forwarded-For, or only what a trusted proxy wrote), and per-plan API keys."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import httpx

from backendlab import plots
from backendlab.topics.ratelimit.experiments.common import start_all

ATTACKER, HONEST, PROXY = "127.0.0.66", "127.0.0.7", "127.0.0.1"
MODES = {"socket peer": "none", "X-Forwarded-For, first entry": "naive",
         "X-Forwarded-For, trusted proxy only": "trusted"}
KEYS = {"free key A": "free_" + "a" * 16, "free key B": "free_" + "b" * 16,
        "pro key": "pro_" + "c" * 16}
BAD_KEYS = {"no key": {}, "malformed key": {"X-API-Key": "free_short"},
            "unknown plan": {"X-API-Key": "gold_" + "d" * 16}}


@dataclass
class KeyRun:
    """Per way of reading the IP: requests admitted for the attacker and the honest user; per API
    key: requests admitted; and what bad keys were answered."""

    points: int
    attacker_requests: int
    honest_requests: int
    admitted: dict[str, dict[str, int]]
    plans: dict[str, int]
    bad_input: list[tuple[str, int, str]]

    def summary(self) -> dict:
        return {"ip modes": self.admitted, "api-key plans": self.plans}

    def plot(self):
        """Requests admitted for the attacker and the honest user, per way of reading the IP."""
        attacker = {mode: counts["attacker"] for mode, counts in self.admitted.items()}
        worst = max(attacker, key=attacker.get)
        others = max(n for mode, n in attacker.items() if mode != worst) if len(attacker) > 1 else 0
        return plots.grouped_bars(self.admitted, ylabel="requests admitted",
                                  title=f"{self.attacker_requests} spoofed requests through one proxy: "
                                        f"'{worst}' admits {attacker[worst]},\nthe other ways at most "
                                        f"{others} (the honest user sends {self.honest_requests})")


def send_from(address: str, url: str, count: int, headers=None) -> int:
    """Send `count` GETs from source address `address` (any 127.x.y.z is this machine);
    `headers` is a dict or a function of the request's index. Returns how many got 200."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, timeout=10) as client:
        return sum(client.get(url, headers=headers(i) if callable(headers) else headers)
                   .status_code == 200 for i in range(count))


def _spoofed(i: int) -> dict:
    return {"X-Forwarded-For": f"10.9.{i // 250}.{i % 250}"}


def client_keys(points: int = 5, attacker_requests: int = 30, honest_requests: int = 3) -> KeyRun:
    """Behind a proxy you run, an attacker sends `attacker_requests` requests, each with a made-up
    X-Forwarded-For, then an honest user sends `honest_requests`; limit `points` per minute per
    IP, read three ways. Then API keys of two plans (free: `points`, pro: 4x as many per minute),
    each sending 5x `points` requests, and three bad keys."""
    with contextlib.ExitStack() as stack:
        common = dict(store="memory", key="ip", points=points, duration=60,
                      trusted_proxies=PROXY)
        apis = start_all(stack, {mode: dict(forwarded=forwarded, **common)
                                 for mode, forwarded in MODES.items()}
                         | {"plans": dict(store="memory", key="api-key", points=points,
                                          duration=60, plans=f"free:{points},pro:{4 * points}")})
        proxies = start_all(stack, {mode: dict(server="proxy", upstream=apis[mode].url)
                                    for mode in MODES})
        admitted = {}
        for mode in MODES:
            url = proxies[mode].url + "/api/data"
            admitted[mode] = {"attacker": send_from(ATTACKER, url, attacker_requests, _spoofed),
                              "honest user": send_from(HONEST, url, honest_requests)}
        plans_url = apis["plans"].url + "/api/data"
        plans = {name: send_from(HONEST, plans_url, 5 * points, {"X-API-Key": key})
                 for name, key in KEYS.items()}
        bad = []
        for case, headers in BAD_KEYS.items():
            response = httpx.get(plans_url, headers=headers)
            bad.append((case, response.status_code, response.json()["error"]))
    return KeyRun(points, attacker_requests, honest_requests, admitted, plans, bad)
