"""HMAC-signed links open until they expire, and break when any part of them changes."""

from urllib.parse import parse_qs, urlsplit

import pytest

from backendlab.servers.errors import Rejected
from backendlab.topics.uploads.signing import signed_url, verify

SECRET = b"k" * 32


def parts(url):
    split = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(split.query).items()}
    return split.path, query["expires"], query["signature"]


def test_a_fresh_link_verifies():
    path, expires, signature = parts(signed_url(SECRET, "/local/abc", 60, now=1000))
    assert (path, expires) == ("/local/abc", "1060")
    verify(SECRET, path, expires, signature, now=1059)


@pytest.mark.parametrize("change, words", [
    (lambda p, e, s: (p, e, s, 1061), "expired"),
    (lambda p, e, s: ("/local/abd", e, s, 1000), "does not match"),
    (lambda p, e, s: (p, "9999999999", s, 1000), "does not match"),
    (lambda p, e, s: (p, e, s[:-1] + ("0" if s[-1] != "0" else "1"), 1000), "does not match"),
    (lambda p, e, s: (p, None, s, 1000), "not signed"),
    (lambda p, e, s: (p, "soon", s, 1000), "not signed"),
])
def test_expired_or_altered_links_are_refused_with_403(change, words):
    path, expires, signature, now = change(*parts(signed_url(SECRET, "/local/abc", 60, now=1000)))
    with pytest.raises(Rejected) as refused:
        verify(SECRET, path, expires, signature, now=now)
    assert refused.value.status == 403 and words in refused.value.message


def test_another_secret_cannot_forge_a_link():
    path, expires, signature = parts(signed_url(b"other", "/local/abc", 60, now=1000))
    with pytest.raises(Rejected, match="does not match"):
        verify(SECRET, path, expires, signature, now=1000)


def test_a_link_lasts_at_least_its_lifetime_whatever_the_fraction_of_the_second():
    path, expires, signature = parts(signed_url(SECRET, "/local/abc", 1, now=1000.99))
    assert expires == "1002"
    verify(SECRET, path, expires, signature, now=1001.98)
