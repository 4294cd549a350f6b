"""Experiment 7: a presigned PUT beside a presigned POST (what each signs, what S3 lets through,
what the completion check catches), and the bucket CORS rule a browser's preflight meets."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
from botocore.exceptions import ClientError

from backendlab import plots
from backendlab.services.s3 import delete_bucket
from backendlab.servers.errors import Rejected
from backendlab.topics.uploads import forms, presign
from backendlab.topics.uploads.experiments.common import Case

APP_ORIGIN, OTHER_ORIGIN = "https://app.example.com", "https://evil.example.net"
CORS_RULE = {"AllowedOrigins": [APP_ORIGIN], "AllowedMethods": ["PUT", "POST"],
             "AllowedHeaders": ["content-type"], "MaxAgeSeconds": 600}


@dataclass
class Attempt:
    """One upload straight to S3: how, what S3 answered, and what completing it then answered."""

    method: str
    case: str
    s3_status: int
    completion: int
    answer: str


@dataclass
class PutVsPost:
    """What each presigned upload signs, the attempts, and the CORS preflights per origin."""

    signed: dict[str, list[str]]
    attempts: list[Attempt]
    preflights: list[Case]
    emulated: bool

    def by_case(self) -> dict[str, Attempt]:
        """The attempts by "METHOD case"."""
        return {f"{a.method} {a.case}": a for a in self.attempts}

    def allowed_origins(self) -> dict[str, str]:
        """Each preflight's origin -> the Access-Control-Allow-Origin it got back ('' for none)."""
        return {case.case: case.answer for case in self.preflights}

    def summary(self) -> dict:
        """What each method signs, each attempt's statuses, and the preflights' answers."""
        return {"signed": self.signed, "emulated S3": self.emulated,
                "attempts": {k: (a.s3_status, a.completion) for k, a in self.by_case().items()},
                "preflights": {c.case: (c.status, c.answer or "no allow-origin")
                               for c in self.preflights}}

    def plot(self):
        """A grid: each attempt's answer from S3 and from the completion check, green kept, red refused."""
        fig, (ax,) = plots.figure(height=0.55 * len(self.attempts) + 1.4)
        rows = list(self.by_case().items())
        for y, (label, attempt) in enumerate(reversed(rows)):
            for x, status in enumerate((attempt.s3_status, attempt.completion)):
                ok = status < 300
                ax.add_patch(plots.plt.Rectangle((x, y), 0.96, 0.9, color=plots.PALETTE[4 if ok else 0]))
                ax.text(x + 0.48, y + 0.45, f"{status} {'accepted' if ok else 'refused'}",
                        ha="center", va="center", color="white", fontweight="bold")
        ax.set(xlim=(0, 2), ylim=(0, len(rows)), xticks=[0.48, 1.48],
               yticks=[y + 0.45 for y in range(len(rows))],
               yticklabels=[label for label, _ in reversed(rows)])
        ax.set_xticklabels([f"S3 ({'moto' if self.emulated else 'real'}) answers the upload",
                            "completion check (HEAD + sniff)"])
        ax.tick_params(length=0)
        ax.grid(False)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        return plots.finish(fig, "A presigned PUT takes any size; only the completion check refuses it")


def _signed_by_put(url: str) -> list[str]:
    """The headers a presigned PUT URL's signature covers."""
    return parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0].split(";")


def _conditions_of_post(fields: dict) -> list[str]:
    """A presigned POST policy's conditions on the upload (not its x-amz-* signing fields)."""
    rules = []
    for condition in presign.policy_of(fields)["conditions"]:
        pairs = [condition] if isinstance(condition, list) else list(condition.items())
        rules += [" ".join(map(str, rule)) for rule in pairs if not str(rule[0]).startswith("x-amz")]
    return rules


def _complete(client, bucket: str, key: str, max_bytes: int) -> tuple[int, str]:
    """What the server's completion check answers for `key`: 201, or its refusal."""
    try:
        presign.verify_object(client, bucket, key, max_bytes, "image/png")
    except Rejected as refusal:
        return refusal.status, refusal.message
    return 201, "recorded"


def _preflight(url: str, origin: str) -> Case:
    """The CORS preflight a browser at `origin` sends before it PUTs to the presigned `url`."""
    answer = httpx.request("OPTIONS", url, headers={
        "Origin": origin, "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type"})
    return Case(origin, answer.status_code, answer.headers.get("access-control-allow-origin", ""))


def put_vs_post(max_bytes: int = 2000) -> PutVsPost:
    """Upload within and over `max_bytes`, and with another Content-Type, by presigned PUT and
    POST; complete each; then preflight a PUT from the allowed origin and from another one."""
    from botocore.config import Config

    from backendlab.services.s3 import s3_client
    from backendlab.topics.uploads.experiments.s3_enforcement import s3_is_emulated
    client = s3_client(config=Config(signature_version="s3v4"))
    bucket = f"backendlab-putpost-{time.time_ns() % 10**12}"
    client.create_bucket(Bucket=bucket)
    attempts, preflights, signed = [], [], {}
    try:
        def put(case: str, data: bytes, ctype: str = "image/png") -> str:
            key = presign.new_key("alice", "png")
            url = presign.presigned_put(client, bucket, key, "image/png")
            sent = httpx.put(url, content=data, headers={"Content-Type": ctype})
            attempts.append(Attempt("PUT", case, sent.status_code,
                                    *_complete(client, bucket, key, max_bytes)))
            return url

        def post(case: str, data: bytes) -> dict:
            key = presign.new_key("alice", "png")
            ticket = presign.presigned_post(client, bucket, key, "image/png", max_bytes)
            sent = httpx.post(ticket["url"], data=ticket["fields"],
                              files={"file": ("f.png", data, "image/png")})
            attempts.append(Attempt("POST", case, sent.status_code,
                                    *_complete(client, bucket, key, max_bytes)))
            return ticket["fields"]

        put_url = put("a PNG within the limit", forms.png(max_bytes // 2))
        put("a PNG 3x over the limit", forms.png(max_bytes * 3))
        put("sent as text/html, signed image/png", forms.png(max_bytes // 2), "text/html")
        fields = post("a PNG within the limit", forms.png(max_bytes // 2))
        post("a PNG 3x over the limit", forms.png(max_bytes * 3))
        signed = {"PUT": _signed_by_put(put_url), "POST": _conditions_of_post(fields)}
        client.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [CORS_RULE]})
        fresh = presign.presigned_put(client, bucket, presign.new_key("alice", "png"), "image/png")
        preflights = [_preflight(fresh, origin) for origin in (APP_ORIGIN, OTHER_ORIGIN)]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NotImplemented":  # MinIO has no bucket CORS API
            raise
    finally:
        delete_bucket(client, bucket)
    return PutVsPost(signed, attempts, preflights, s3_is_emulated())
