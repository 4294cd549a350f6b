"""Experiments of notebook 02: file uploads done right, and presigned S3 URLs.

1. `storage_modes`: concurrent large uploads kept in memory, spooled, or streamed; server RSS.
2. `size_limit`: an oversized upload cut off at the limit: how much the server read, what is left.
3. `type_checks` and `hostile_names`: spoofed types against a Content-Type check and a
   magic-bytes check; hostile filenames and where they would have landed.
4. `proxied_vs_direct`: the same files through the server into S3, or straight to S3 with a
   presigned POST; the server's bytes, CPU and memory.
5. `signed_downloads` and `s3_enforcement`: who may download, expiry and tampering, on this
   server's HMAC links and on S3's presigned URLs (and what the embedded emulator skips).
6. `bad_inputs`: the catalogue of hostile and broken uploads, and what is left afterwards.
`leftovers` lists what such runs could leave behind, for a notebook to compare at its end.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from backendlab import progressbar
from backendlab.peak import PeakWindow, current_rss
from backendlab.servers import start_server
from backendlab.services.s3 import delete_bucket
from backendlab.topics.uploads import forms, presign
from backendlab.topics.uploads.forms import Part, encode, headers
from backendlab.topics.uploads.limits import MB
from backendlab.topics.uploads.names import inside, naive_destination

MODES = ("memory", "spooled", "stream")
ALICE, BOB = {"x-user": "alice"}, {"x-user": "bob"}


@dataclass
class Case:
    """One attempt of an experiment: what was tried, the status it got, and the answer."""

    case: str
    status: int
    answer: str


@contextlib.contextmanager
def upload_server(**options):
    """An uploads server storing into a fresh temp folder; yields (server, folder)."""
    with tempfile.TemporaryDirectory(prefix="backendlab-uploads-") as folder:
        with start_server("uploads", upload_dir=folder, **options) as server:
            yield server, Path(folder)


def stats(server) -> dict:
    return httpx.get(server.url + "/stats").json()


def _post_big(url: str, size: int, user: str = "alice", seconds: float = 0.0,
              timeout: float = 120) -> httpx.Response:
    return httpx.post(url, content=forms.big_file(size, seconds=seconds), headers=headers(user),
                      timeout=timeout)


# 1. Memory vs spooled vs streamed ----------------------------------------------------------------

@dataclass
class ModeRun:
    """One storage mode: the server's peak RSS above its fresh baseline after each step."""

    mode: str
    growth: dict[int, int] = field(default_factory=dict)
    statuses: list[int] = field(default_factory=list)


@dataclass
class StorageComparison:
    file_bytes: int
    runs: dict[str, ModeRun]
    leftover_partial: int

    @property
    def concurrency(self) -> list[int]:
        return list(next(iter(self.runs.values())).growth)

    def growth_mb(self) -> dict[str, list[float]]:
        """{mode: [peak growth in MB per concurrency]} for `plots.lines`."""
        return {mode: [run.growth[n] / MB for n in self.concurrency]
                for mode, run in self.runs.items()}

    def summary(self) -> dict:
        return {mode: {f"{n} at once": f"+{g / MB:.1f} MB" for n, g in run.growth.items()}
                for mode, run in self.runs.items()}


def storage_modes(file_mb: float = 8, concurrency: tuple[int, ...] = (1, 2, 4),
                  modes: tuple[str, ...] = MODES, *, seconds: float = 0.6,
                  progress: bool = True) -> StorageComparison:
    """For each mode, a fresh server takes `n` uploads of `file_mb` MB at once, for each `n` in
    `concurrency` (rising); each client takes `seconds` to send its file, like a user on a real
    network, so the uploads overlap. Growth is the server's peak RSS during each step (`PeakWindow`:
    no sampling can miss it) above its RSS after a small warm-up upload."""
    size = int(file_mb * MB)
    runs, leftover = {}, 0
    with progressbar.progress(len(modes) * len(concurrency), "uploads", progress) as bar:
        for mode in modes:
            run = runs[mode] = ModeRun(mode)
            with upload_server(mode=mode, max_file_bytes=size + MB, max_files=1) as (server, folder):
                _post_big(server.url + "/upload", 100_000)
                baseline = current_rss(server.pid)
                for n in concurrency:
                    bar.set_postfix_str(f"{mode}, {n} at once")
                    with PeakWindow(server.pid) as window, ThreadPoolExecutor(n) as pool:
                        run.statuses += [r.status_code for r in pool.map(
                            lambda _: _post_big(server.url + "/upload", size, seconds=seconds),
                            range(n))]
                    run.growth[n] = max(0, window.peak - baseline)
                    bar.update()
                leftover += sum(1 for p in folder.iterdir() if p.stat().st_size not in (size, 100_000))
    return StorageComparison(size, runs, leftover)


# 2. A size limit enforced while streaming --------------------------------------------------------

@dataclass
class LimitRun:
    limit: int
    sent: int
    status: int
    error: str
    server_read: int
    rss_growth: int
    files_left: int
    still_up: bool


def size_limit(limit_mb: float = 1, send_mb: float = 40) -> LimitRun:
    """Send `send_mb` MB to a server whose file limit is `limit_mb` MB, streamed mode."""
    limit, sent = int(limit_mb * MB), int(send_mb * MB)
    with upload_server(max_file_bytes=limit) as (server, folder):
        with PeakWindow(server.pid) as window:
            response = _post_big(server.url + "/upload", sent)
        after = stats(server)
        still_up = httpx.get(server.url + "/health").status_code == 200
        return LimitRun(limit, sent, response.status_code, response.json()["error"],
                        after["last_upload_bytes"], window.growth,
                        sum(1 for _ in folder.iterdir()), still_up)


# 3. Type checks and names ------------------------------------------------------------------------

SPOOFS = [
    # (what it really is, filename, declared Content-Type, bytes)
    ("a real PNG", "cat.png", "image/png", forms.SAMPLES["png"]),
    ("a Linux executable renamed", "cat.png", "image/png", forms.SAMPLES["elf"]),
    ("an HTML page with a script", "cat.png", "image/png", forms.SAMPLES["html"]),
    ("a PDF named .png", "cat.png", "image/png", forms.SAMPLES["pdf"]),
    ("HTML, honestly named", "page.html", "text/html", forms.SAMPLES["html"]),
]


def type_checks() -> list[dict]:
    """Each file of SPOOFS against a server that trusts Content-Type and one that sniffs bytes."""
    rows = [{"file": what, "sent as": f"{name}, {ctype}"} for what, name, ctype, _ in SPOOFS]
    for check in ("content-type", "magic"):
        with upload_server(type_check=check) as (server, _):
            for row, (_, name, ctype, data) in zip(rows, SPOOFS):
                answer = httpx.post(server.url + "/upload", headers=headers(),
                                    content=encode([Part("file", data, name, ctype)]))
                row[f"{check} check"] = answer.status_code
                row[f"{check} answer"] = answer.json().get("error", "stored")
    return rows


HOSTILE_NAMES = ["../../../tmp/evil.png", "/etc/cron.d/evil.png", "C:\\Windows\\evil.png",
                 "nul\x00byte.png", "\u202egnp.exe", "x" * 300 + ".png",
                 "ｆｕｌｌｗｉｄｔｈ．ｐｎｇ", "..", "Zoë 東京.png"]


@dataclass
class NameRun:
    rows: list[dict]
    folder_files: set[str]
    outside: list[str]


def hostile_names(names: list[str] = HOSTILE_NAMES) -> NameRun:
    """Upload a real PNG under each hostile name (one request each); where would a naive
    `folder + name` have written it, and where did the server store it? "evil" in a name becomes
    "evil-TOKEN", unique to the run, so `outside` lists exactly the naive destinations that exist
    afterwards (removed again: a run leaves nothing behind)."""
    token = uuid.uuid4().hex[:8]
    rows, outside = [], []
    with upload_server() as (server, folder):
        for name in (n.replace("evil", f"evil-{token}") for n in names):
            answer = httpx.post(server.url + "/upload", headers=headers(),
                                content=encode([Part("file", forms.png(800), name, "image/png")]))
            body = answer.json()
            stored = body["files"][0] if answer.status_code == 201 else {}
            naive = naive_destination(folder, name)
            escapes = not inside(folder, naive)
            if escapes and naive.is_file():
                outside.append(str(naive))
                naive.unlink()
            rows.append({"sent": name if len(name) < 40 else name[:20] + f"…({len(name)} chars)",
                         "status": answer.status_code,
                         "naive path escapes": escapes,
                         "shown as": stored.get("name", body.get("error")),
                         "stored as": stored.get("stored_as", "-")})
        files = {p.name for p in folder.iterdir()}
    return NameRun(rows, files, outside)


# 4. Proxied through the server vs direct to S3 ---------------------------------------------------

@dataclass
class PathCost:
    """What the server spent on one way of uploading the files."""

    bytes_received: int
    cpu_seconds: float
    rss_growth: int
    seconds: float
    ok: int


@dataclass
class ProxyComparison:
    files: int
    file_bytes: int
    costs: dict[str, PathCost]
    rows_recorded: int

    def values(self, what: str) -> dict[str, float]:
        scale = {"bytes_received": MB, "rss_growth": MB}.get(what, 1)
        return {way: getattr(cost, what) / scale for way, cost in self.costs.items()}

    def summary(self) -> dict:
        return {way: {"server MB received": round(c.bytes_received / MB, 2),
                      "server CPU s": round(c.cpu_seconds, 2),
                      "server RSS growth MB": round(c.rss_growth / MB, 1),
                      "seconds": round(c.seconds, 2), "uploads ok": f"{c.ok}/{self.files}"}
                for way, c in self.costs.items()}


def direct_upload(url: str, data: bytes, filename: str = "photo.png",
                  content_type: str = "image/png", user: dict = ALICE) -> httpx.Response:
    """The browser's part of a presigned upload: ask, POST the file to S3, then complete."""
    ticket = httpx.post(url + "/presign", headers=user,
                        json={"filename": filename, "content_type": content_type}).json()
    sent = httpx.post(ticket["url"], data=ticket["fields"], timeout=120,
                      files={"file": (filename, data, content_type)})
    sent.raise_for_status()
    return httpx.post(url + "/complete", headers=user, json={"key": ticket["key"]})


def _measure(server, work) -> PathCost:
    before = stats(server)
    with PeakWindow(server.pid) as window:
        start = time.perf_counter()
        ok = work()
        seconds = time.perf_counter() - start
    after = stats(server)
    return PathCost(after["bytes_received"] - before["bytes_received"],
                    after["cpu_seconds"] - before["cpu_seconds"], window.growth, seconds, ok)


def proxied_vs_direct(file_mb: float = 8, files: int = 3) -> ProxyComparison:
    """Upload `files` files of `file_mb` MB to S3 twice: streamed through the server (/proxy),
    and straight to S3 with presigned POSTs; measure the server around each."""
    size = int(file_mb * MB)
    data = forms.png(size)
    with upload_server(max_file_bytes=size + MB) as (server, _):
        httpx.post(server.url + "/presign", headers=ALICE,
                   json={"filename": "warm.png", "content_type": "image/png"})

        def proxied() -> int:
            with ThreadPoolExecutor(files) as pool:
                return sum(r.status_code == 201 for r in pool.map(
                    lambda _: _post_big(server.url + "/proxy", size), range(files)))

        def direct() -> int:
            with ThreadPoolExecutor(files) as pool:
                return sum(r.status_code == 201 for r in pool.map(
                    lambda _: direct_upload(server.url, data), range(files)))

        costs = {"proxied through the server": _measure(server, proxied),
                 "direct to S3 (presigned POST)": _measure(server, direct)}
        rows = stats(server)["rows"]
    return ProxyComparison(files, size, costs, rows)


def completion_checks() -> tuple[list[Case], int]:
    """Completion against what S3 holds: too early, a spoofed object, a good one; and the
    metadata rows recorded afterwards."""
    cases = []
    with upload_server() as (server, _):
        url = server.url
        ticket = httpx.post(url + "/presign", headers=ALICE,
                            json={"filename": "a.png", "content_type": "image/png"}).json()
        early = httpx.post(url + "/complete", headers=ALICE, json={"key": ticket["key"]})
        cases.append(Case("complete before uploading", early.status_code,
                                  early.json()["error"]))
        for case, data in (("an executable uploaded as image/png", forms.SAMPLES["elf"]),
                           ("a real PNG", forms.png(4000))):
            answer = direct_upload(url, data)
            cases.append(Case(case, answer.status_code,
                                      answer.json().get("error", "recorded")))
        rows = stats(server)["rows"]
    return cases, rows


# 5. Signed downloads ------------------------------------------------------------------------------

def _fetch(url: str) -> Case:
    response = httpx.get(url)
    text = response.json().get("error", "") if response.status_code >= 400 and \
        response.headers.get("content-type", "").startswith("application/json") else \
        f"{len(response.content)} bytes"
    return Case("", response.status_code, text or response.text[:120])


def _case(name: str, found: Case) -> Case:
    return Case(name, found.status, found.answer)


def signed_downloads(link_seconds: int = 1) -> list[Case]:
    """Alice stores a file locally and in S3; who gets a link, and what the links still open."""
    cases = []
    with upload_server(link_seconds=link_seconds) as (server, _):
        url = server.url
        local = httpx.post(url + "/upload", headers=headers(),
                           content=encode([Part("file", forms.png(2000), "me.png", "image/png")]))
        file_id = local.json()["files"][0]["id"]
        link = httpx.get(f"{url}/local/{file_id}/link", headers=ALICE).json()["url"]
        cases.append(_case("local: alice opens her signed link", _fetch(url + link)))
        bob = httpx.get(f"{url}/local/{file_id}/link", headers=BOB)
        cases.append(Case("local: bob asks for a link to alice's file", bob.status_code,
                                  bob.json()["error"]))
        other_id = file_id[:-1] + ("1" if file_id.endswith("0") else "0")
        tampered = link.replace(f"/local/{file_id}", f"/local/{other_id}")
        cases.append(_case("local: the link pointed at another file", _fetch(url + tampered)))
        row = direct_upload(url, forms.png(2000)).json()
        s3_link = httpx.get(f"{url}/files/{row['id']}/download", headers=ALICE).json()["url"]
        cases.append(_case("S3: alice opens her presigned GET", _fetch(s3_link)))
        bob = httpx.get(f"{url}/files/{row['id']}/download", headers=BOB)
        cases.append(Case("S3: bob asks for a link to alice's file", bob.status_code,
                                  bob.json()["error"]))
        time.sleep(link_seconds + 1.1)
        cases.append(_case(f"local: alice's link, {link_seconds + 1} s after it expired",
                           _fetch(url + link)))
    return cases


# 6. What S3 enforces and the emulator does not ---------------------------------------------------

def s3_is_emulated() -> bool:
    """True when the suite's S3 is moto (which enforces no presign rule)."""
    from backendlab.services.s3 import service
    return service.info().version.startswith("moto")


def s3_enforcement(max_bytes: int = 2000) -> list[Case]:
    """Break each rule of a presigned POST and GET straight against S3; a real S3 or MinIO refuses
    every one (4xx), moto accepts them (2xx)."""
    from botocore.config import Config

    from backendlab.services.s3 import s3_client
    client = s3_client(config=Config(signature_version="s3v4"))
    bucket = f"backendlab-enforce-{time.time_ns() % 10**12}"
    client.create_bucket(Bucket=bucket)
    cases = []
    try:
        key = presign.new_key("alice", "png")

        def post(case: str, data: bytes, ctype: str = "image/png", change: dict | None = None):
            ticket = presign.presigned_post(client, bucket, key, "image/png", max_bytes)
            fields = {**ticket["fields"], **(change or {})}
            answer = httpx.post(ticket["url"], data=fields, files={"file": ("f", data, ctype)})
            cases.append(Case(case, answer.status_code, answer.text[:100]))

        post("POST a file over the signed size range", forms.png(max_bytes * 3))
        post("POST with another Content-Type than signed", forms.png(500), "text/html",
             {"Content-Type": "text/html"})
        post("POST to a key outside the user's prefix", forms.png(500),
             change={"key": "uploads/bob/overwrite.png"})
        client.put_object(Bucket=bucket, Key=key, Body=forms.png(500), ContentType="image/png")
        short = presign.presigned_get(client, bucket, key, "f.png", expires=1)
        cases.append(_case("GET with its expiry changed in the URL",
                           _fetch(short.replace("X-Amz-Expires=1&", "X-Amz-Expires=3600&"))))
        time.sleep(2.1)
        cases.append(_case("GET 2 s after the URL expired", _fetch(short)))
    finally:
        delete_bucket(client, bucket)
    return cases


# 7. The bad input catalogue ----------------------------------------------------------------------

@dataclass
class BadInputResult:
    cases: list[Case]
    files_left: int
    still_up: bool

    def status(self, case: str) -> int:
        return next(c.status for c in self.cases if c.case == case)

    def table(self) -> list[tuple[str, int, str]]:
        return [(c.case, c.status, c.answer) for c in self.cases]


def _slow_client(url: str, pause: float) -> Case:
    """Send the headers and the start of a file, then stall longer than the server waits."""
    host, port = url.removeprefix("http://").split(":")
    body = Part("file", filename="slow.png", content_type="image/png").header() + forms.png(600)
    with socket.create_connection((host, int(port)), timeout=pause + 5) as sock:
        sock.sendall(f"POST /upload HTTP/1.1\r\nHost: {host}\r\nX-User: alice\r\n"
                     f"Content-Type: {forms.content_type()}\r\nContent-Length: 100000\r\n\r\n"
                     .encode() + body)
        reply = b""
        with contextlib.suppress(OSError):
            while b"}" not in reply:
                piece = sock.recv(4096)
                if not piece:
                    break
                reply += piece
    status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else 0
    return Case("slow client (stalls mid-file)", status,
                        reply.partition(b"\r\n\r\n")[2].decode(errors="replace"))


def bad_inputs(limit_kb: int = 256, read_timeout: float = 1.0) -> BadInputResult:
    """Every hostile or broken upload of the catalogue against a streamed-mode server."""
    png, limit = forms.png(2000), limit_kb * 1024
    one = [Part("file", png, "ok.png", "image/png")]
    sends = [
        ("oversized file", b"".join(forms.big_file(limit * 4)), headers()),
        ("too many files", encode([Part("f", png, f"{i}.png", "image/png") for i in range(4)]),
         headers()),
        ("too many fields", encode([Part(f"k{i}", b"v") for i in range(11)]), headers()),
        ("oversized text field", encode([Part("note", b"x" * (65 * 1024))]), headers()),
        ("executable renamed .png", encode([Part("f", forms.SAMPLES["elf"], "cat.png",
                                                 "image/png")]), headers()),
        ("HTML renamed .png", encode([Part("f", forms.SAMPLES["html"], "cat.png", "image/png")]),
         headers()),
        (".exe extension", encode([Part("f", png, "setup.exe", "image/png")]), headers()),
        ("truncated multipart body", encode(one)[:-40], headers()),
        ("missing boundary", encode(one), {"content-type": "multipart/form-data",
                                          "x-user": "alice"}),
        ("not multipart at all", png, {"content-type": "image/png", "x-user": "alice"}),
        ("empty file", encode([Part("f", b"", "empty.png", "image/png")]), headers()),
        ("no X-User header", encode(one), headers(user=None)),
    ]
    cases = []
    with upload_server(max_file_bytes=limit, read_timeout=read_timeout) as (server, folder):
        for case, body, sent_headers in sends:
            answer = httpx.post(server.url + "/upload", content=body, headers=sent_headers)
            cases.append(Case(case, answer.status_code,
                                      answer.json().get("error", "stored (it should not be)")))
        cases.append(_slow_client(server.url, read_timeout * 2))
        time.sleep(0.2)
        still_up = httpx.get(server.url + "/health").status_code == 200
        left = sum(1 for _ in folder.iterdir())
    return BadInputResult(cases, left, still_up)


# What a run could leave behind ------------------------------------------------------------------

BUCKET_PREFIXES = ("backendlab-uploads-", "backendlab-lab02-", "backendlab-enforce-")


def leftovers() -> dict[str, set[str]]:
    """This suite's upload buckets, `upload_files_*` tables, upload temp folders and running
    server processes, as they are now. A notebook takes this at its start and asserts it is the
    same at its end: anything new was made by the run and not cleaned up."""
    from backendlab import processes
    from backendlab.services.s3 import s3_client
    from backendlab.services.sql import connect, database_url
    buckets = {b["Name"] for b in s3_client().list_buckets().get("Buckets", [])
               if b["Name"].startswith(BUCKET_PREFIXES)}
    url = database_url()
    query = ("SELECT name FROM sqlite_master WHERE type = 'table'" if url.startswith("sqlite")
             else "SELECT table_name FROM information_schema.tables")
    with contextlib.closing(connect(url)) as conn, contextlib.closing(conn.cursor()) as cursor:
        cursor.execute(query)
        tables = {row[0] for row in cursor.fetchall() if row[0].startswith("upload_files_")}
    folders = {p.name for p in Path(tempfile.gettempdir()).glob("backendlab-uploads-*")}
    servers = {f"{p.name} (pid {p.pid})" for p in processes.running() if p.name.startswith("server-")}
    return {"buckets": buckets, "tables": tables, "folders": folders, "servers": servers}
