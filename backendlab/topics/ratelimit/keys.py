"""Whom to count: the client's IP (directly, or behind proxies you run), a user id, or an API key.

Behind a reverse proxy every request comes from the proxy's address, so limiting by the socket's
peer puts all users in one bucket. `X-Forwarded-For` names the client, but anyone can send that
header: only the entries appended by proxies you trust are facts. `client_ip` walks the header
from the right, skipping trusted proxies, and takes the first address it cannot vouch for.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass

FORWARDED_MODES = ("none", "naive", "trusted")
API_KEY = re.compile(r"^(?P<plan>[a-z]+)_(?P<secret>[A-Za-z0-9]{16,64})$")
USER_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class BadKey(ValueError):
    """A request whose identity cannot be read; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def parse_networks(text: str) -> Networks:
    """'127.0.0.1, 10.0.0.0/8' -> the proxies you run, as networks (a bare address is a /32)."""
    networks = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"bad proxy address {part!r}: write addresses or networks, "
                             "e.g. 127.0.0.1,10.0.0.0/8") from None
    return tuple(networks)


def _within(address: str, networks: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(peer: str, forwarded_for: str | None, mode: str = "none",
              trusted: Networks = ()) -> str:
    """The client address to limit by.

    none: the socket's peer. naive: the leftmost X-Forwarded-For entry (what the client claims:
    spoofable). trusted: if the peer is a trusted proxy, the rightmost entry not added by one;
    an entry there that is not an address means the chain is broken, so the peer counts.
    """
    entries = [e.strip() for e in (forwarded_for or "").split(",") if e.strip()]
    if mode == "none" or not entries:
        return peer
    if mode == "naive":
        return entries[0]
    if not _within(peer, trusted):
        return peer
    for entry in reversed(entries):
        if not _within(entry, trusted):
            return entry if _is_ip(entry) else peer
    return entries[0]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class Identity:
    """What a request is counted as, and the points per duration of its plan."""

    key: str
    points: int
    plan: str = "default"


def api_key_identity(header: str | None, plans: dict[str, int]) -> Identity:
    """`X-API-Key: <plan>_<16-64 letters or digits>`; missing 401, malformed 400, unknown plan 403."""
    if not header:
        raise BadKey(401, "missing X-API-Key header; send X-API-Key: <plan>_<key>")
    match = API_KEY.match(header.strip())
    if not match:
        raise BadKey(400, "malformed X-API-Key: expected <plan>_<16 to 64 letters or digits>, "
                          "e.g. free_a1b2c3d4e5f6a7b8")
    plan = match["plan"]
    if plan not in plans:
        raise BadKey(403, f"unknown plan {plan!r} in X-API-Key; plans: {', '.join(sorted(plans))}")
    digest = hashlib.sha256(header.strip().encode()).hexdigest()[:16]  # no secrets in Redis keys
    return Identity(f"key:{plan}:{digest}", plans[plan], plan)


def user_identity(header: str | None, points: int) -> Identity:
    """`X-User-Id` (an authenticated user id in a real app); missing 401, malformed 400."""
    if not header:
        raise BadKey(401, "missing X-User-Id header")
    if not USER_ID.match(header):
        raise BadKey(400, "malformed X-User-Id: 1 to 64 letters, digits or _ . @ -")
    return Identity(f"user:{header}", points)


def parse_plans(text: str) -> dict[str, int]:
    """'free:5,pro:50' -> {'free': 5, 'pro': 50}."""
    plans = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, points = part.partition(":")
        if not re.fullmatch(r"[a-z]+", name) or not points.isdigit() or int(points) < 1:
            raise ValueError(f"bad plan {part!r}: write name:points, e.g. free:5,pro:50")
        plans[name] = int(points)
    return plans
