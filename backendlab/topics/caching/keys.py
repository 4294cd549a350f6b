"""Cache keys of the products API: the designed scheme and the two classic bugs.

`designed` names every parameter that changes the answer, in a fixed order, under a namespace, with
the user first for private data. `category-only` forgets the page (page 2 gets page 1's products);
`raw-url` keys on the query string as sent, which holds the parameters in arrival order and not the
user of a private page, who is in a header (bob gets alice's orders).
"""

from __future__ import annotations

SCHEMES = ("designed", "category-only", "raw-url")


class KeyScheme:
    """Builds the keys of one server; values reaching it are already validated (no separators)."""

    def __init__(self, namespace: str, scheme: str = "designed"):
        if scheme not in SCHEMES:
            raise ValueError(f"unknown key scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
        self.ns, self.scheme = namespace, scheme

    def products(self, raw: str, category: str, page: int, size: int, version: int = 0) -> str:
        """The key of one products page; `raw` is the request's path and query string as sent."""
        if self.scheme == "category-only":
            return f"{self.ns}:products:{category}"
        if self.scheme == "raw-url":
            return f"{self.ns}:{raw}"
        return f"{self.ns}:products:v{version}:category={category}:page={page}:page_size={size}"

    def orders(self, raw: str, user: str, page: int, size: int) -> str:
        """The key of one page of `user`'s private orders."""
        if self.scheme == "category-only":
            return f"{self.ns}:orders:page={page}"
        if self.scheme == "raw-url":
            return f"{self.ns}:{raw}"
        return f"{self.ns}:user:{user}:orders:page={page}:page_size={size}"

    def tag(self, category: str) -> str:
        """The set listing every cached page of `category` (for delete-on-write)."""
        return f"{self.ns}:tag:products:category={category}"

    def version(self, category: str) -> str:
        """The counter whose value is part of every key of `category` (for versioned keys)."""
        return f"{self.ns}:version:products:category={category}"
