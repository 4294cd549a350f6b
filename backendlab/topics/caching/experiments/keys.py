"""Key design, measured: every answer of three key schemes checked against the database.

The classic requests first (page 1 then page 2 of a category; alice's orders then bob's), then a
randomized workload: users, categories, pages, page sizes, and parameters in random order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from backendlab import plots, progressbar
from backendlab.topics.caching.experiments.shop import Shop
from backendlab.topics.caching.products import CATEGORIES, USERS

SCHEMES = ("category-only", "raw-url", "designed")
CLASSIC = (("products", {"category": "books", "page": 1, "page_size": 5}, None),
           ("products", {"category": "books", "page": 2, "page_size": 5}, None),
           ("orders", {"page": 1, "page_size": 5}, "alice"),
           ("orders", {"page": 1, "page_size": 5}, "bob"))


@dataclass
class Answer:
    """One request and whether the body matched what the database holds for it."""

    request: str
    user: str | None
    expected: list[int]
    got: list[int]
    got_owner: str | None
    how: str

    @property
    def leaked(self) -> bool:
        """A private answer that carried another user's data."""
        return self.user is not None and self.got_owner != self.user

    @property
    def wrong(self) -> bool:
        return self.got != self.expected or self.leaked


@dataclass
class KeyDesignRun:
    """One key scheme: the classic requests on a cold cache, then the randomized workload."""

    scheme: str
    classic: list[Answer]
    answers: list[Answer]
    keys: int

    @property
    def wrong(self) -> int:
        return sum(answer.wrong for answer in self.answers)

    @property
    def leaked(self) -> int:
        return sum(answer.leaked for answer in self.answers)

    def summary(self) -> dict:
        return {"wrong answers": self.wrong, "other users' data": self.leaked, "keys": self.keys}


class KeyDesigns(dict):
    """{scheme: KeyDesignRun}: every scheme on the same requests."""

    def plot(self):
        """Wrong answers and leaks per scheme (left), beside the keys each left in Redis (right)."""
        requests = len(next(iter(self.values())).answers)
        best = min(self.values(), key=lambda run: (run.wrong, run.keys))
        worst = max(self.values(), key=lambda run: (run.leaked, run.wrong))
        return plots.grouped_bars_and_totals(
            {scheme: {"wrong answers": run.wrong, "another user's orders": run.leaked}
             for scheme, run in self.items()},
            {scheme: run.keys for scheme, run in self.items()},
            ylabels=(f"requests (of {requests})", "keys"),
            titles=("wrong answers, and leaks among them", "keys left in Redis"),
            title=f"The same {requests} requests: {best.scheme} answers {requests - best.wrong} right "
                  f"with {best.keys} keys;\n{worst.scheme} serves another user's orders {worst.leaked} times")


def ask(client: httpx.Client, kind: str, params: dict, user: str | None) -> Answer:
    """GET a products page (kind "products") or `user`'s orders, parameters in the order given."""
    query = "&".join(f"{name}={value}" for name, value in params.items())
    page, size = int(params.get("page", 1)), int(params.get("page_size", 10))
    if kind == "products":
        path, headers = f"/products?{query}", {}
        expected = Shop.page_ids(params["category"], page, size)
    else:
        path, headers = f"/me/orders?{query}", {"X-User": user}
        expected = Shop.order_ids(user, page, size)
    response = client.get(path, headers=headers)
    response.raise_for_status()
    body = response.json()
    return Answer(path, user, expected, [item["id"] for item in body["items"]], body.get("user"),
                  response.headers["x-cache"])


def random_request(rng: random.Random) -> tuple[str, dict, str | None]:
    params = {"page": rng.randint(1, 3), "page_size": rng.choice((5, 10))}
    if rng.random() < 0.5:
        kind, user = "orders", rng.choice(USERS)
    else:
        kind, user = "products", None
        params["category"] = rng.choice(CATEGORIES[:3])
    items = list(params.items())
    rng.shuffle(items)
    return kind, dict(items), user


def key_designs(schemes: tuple[str, ...] = SCHEMES, requests: int = 200, seed: int = 7,
                progress: bool = True) -> KeyDesigns:
    """Per scheme, on a cold cache: the CLASSIC requests, then the same `requests` random ones."""
    rng = random.Random(seed)
    workload = [random_request(rng) for _ in range(requests)]
    runs = KeyDesigns()
    options = {scheme: dict(key_scheme=scheme, invalidation="ttl", query_delay=0.0)
               for scheme in schemes}
    with Shop() as shop, shop.serve_all(options) as started, \
            progressbar.progress(len(schemes), "key schemes", progress) as bar:
        for scheme, server in started.items():
            with httpx.Client(base_url=server.url, timeout=10) as client:
                classic = [ask(client, *request) for request in CLASSIC]
                answers = [ask(client, *request) for request in workload]
            runs[scheme] = KeyDesignRun(scheme, classic, answers, len(shop.keys(scheme + ":")))
            bar.update()
    return runs
