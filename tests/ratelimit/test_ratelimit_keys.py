"""Whom a limiter counts: the client IP (X-Forwarded-For only as written by proxies you trust), a
user id, or an API key naming a plan; bad identities get the right status and a clear message."""

import pytest

from backendlab.topics.ratelimit.keys import (BadKey, api_key_identity, client_ip, parse_networks,
                                              parse_plans, user_identity)

PROXIES = parse_networks("127.0.0.1, 10.0.0.0/8")


def test_without_forwarding_the_peer_is_the_client_whatever_the_header_says():
    assert client_ip("127.0.0.1", "6.6.6.6", "none", PROXIES) == "127.0.0.1"


def test_naive_mode_believes_the_leftmost_entry_which_a_client_can_forge():
    assert client_ip("127.0.0.1", "6.6.6.6, 203.0.113.9", "naive") == "6.6.6.6"
    assert client_ip("203.0.113.9", "anything at all", "naive") == "anything at all"


@pytest.mark.parametrize("peer, header, expected", [
    ("127.0.0.1", "203.0.113.9", "203.0.113.9"),                    # one proxy of ours
    ("127.0.0.1", "6.6.6.6, 203.0.113.9", "203.0.113.9"),           # forged entry on the left
    ("127.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.2.3", "203.0.113.9"),  # two proxies of ours
    ("198.51.100.4", "6.6.6.6", "198.51.100.4"),                    # not from a proxy of ours
    ("127.0.0.1", "6.6.6.6, not-an-ip", "127.0.0.1"),               # broken chain: the peer
    ("127.0.0.1", None, "127.0.0.1"),                               # no header
    ("127.0.0.1", "10.0.0.1", "10.0.0.1"),                          # only proxies: the first
])
def test_trusted_mode_takes_the_rightmost_entry_no_proxy_of_ours_wrote(peer, header, expected):
    assert client_ip(peer, header, "trusted", PROXIES) == expected


def test_proxies_are_addresses_or_networks():
    assert [str(n) for n in parse_networks(" 127.0.0.1 ,10.0.0.0/8,::1")] == [
        "127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert parse_networks("") == ()
    with pytest.raises(ValueError, match="bad proxy address 'proxy.local'"):
        parse_networks("127.0.0.1,proxy.local")


def test_an_api_key_names_its_plan_and_never_reaches_redis_in_clear():
    secret = "pro_" + "Z9" * 10
    identity = api_key_identity(secret, {"free": 5, "pro": 50})
    assert (identity.plan, identity.points) == ("pro", 50)
    assert identity.key.startswith("key:pro:") and "Z9" not in identity.key
    assert api_key_identity(f"  {secret} ", {"pro": 50}).key == identity.key
    assert api_key_identity("pro_" + "Y8" * 10, {"pro": 50}).key != identity.key


@pytest.mark.parametrize("header, status, message", [
    (None, 401, "missing X-API-Key header"),
    ("free_short", 400, "malformed X-API-Key"),
    ("free key with spaces in it", 400, "malformed X-API-Key"),
    ("gold_" + "a" * 16, 403, "unknown plan 'gold' in X-API-Key; plans: free, pro"),
])
def test_a_bad_api_key_gets_the_right_status(header, status, message):
    with pytest.raises(BadKey, match=message) as caught:
        api_key_identity(header, {"free": 5, "pro": 50})
    assert caught.value.status == status


@pytest.mark.parametrize("header, status", [(None, 401), ("", 401), ("a" * 65, 400),
                                            ("bob; DROP", 400)])
def test_a_bad_user_id_gets_the_right_status(header, status):
    with pytest.raises(BadKey) as caught:
        user_identity(header, 10)
    assert caught.value.status == status


def test_a_user_is_counted_by_id():
    assert user_identity("alice@example.com", 7).key == "user:alice@example.com"


def test_plans_parse_and_bad_ones_say_how_to_write_them():
    assert parse_plans("free:5, pro:50") == {"free": 5, "pro": 50}
    for bad in ("free", "free:0", "Free:5", "free:five"):
        with pytest.raises(ValueError, match="write name:points, e.g. free:5,pro:50"):
            parse_plans(bad)
