"""Lab 02's checks: a secure streaming upload handler, and a presigned POST with conditions.

`check(save_upload, presign_upload)` ships the handler to a real uploadlab server (see
`backendlab.checks.child`), sends it good and hostile uploads, looks at the upload folder after each, and
measures the server's peak memory while three paced 6 MB uploads run at once. It calls the
presign function against the suite's S3 and reads the policy it signed. The memory limit sits
between what a streaming handler (under 1 MB) and one holding the files (18 MB or more) measure.
Hostile filenames carry a token unique to each run: the check looks exactly where a naive
`folder + filename` would write them and removes what it finds, so no run leaves files behind.
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from backendlab.checks import Check, CheckFailed, Report, describe_error, run_lab
from backendlab.checks.child import start_lab_server
from backendlab.peak import PeakWindow
from backendlab.servers import RunningServer
from backendlab.services.s3 import delete_bucket
from backendlab.topics.uploads import forms
from backendlab.topics.uploads.forms import Part, encode, headers
from backendlab.topics.uploads.limits import Limits
from backendlab.topics.uploads.names import naive_destination

LIMIT = 8 * 2**20
BIG, BIG_USERS = 6 * 2**20, 3
MEMORY_LIMIT = 2 * 2**20  # a third of one file: a streaming handler holds a chunk (~0 MB measured),
# one holding files holds at least one whole 6 MB file even when the uploads do not overlap
READ_SLACK = 512 * 1024  # asyncio reads a socket up to 256 KB at a time
PNG = forms.png(3000)
FIELD_LIMIT = Limits().max_field_bytes  # the lab server keeps the default field limit
FIELD_BYTES = 4 * FIELD_LIMIT
GENERATED = re.compile(r"[0-9a-f]{32}\.(png|jpg|gif|webp|pdf)")


class _Lab:
    """The learner's handler running in an uploadlab server over a fresh folder, and their presign
    function with a bucket of the suite's S3 made on first use."""

    def __init__(self, save_upload, presign_upload):
        self.fn, self.presign = save_upload, presign_upload
        self.name = getattr(save_upload, "__name__", "your function")
        self.root = Path(tempfile.mkdtemp(prefix="backendlab-lab02-"))
        self.folder = self.root / "store"
        self.folder.mkdir()
        self.hostile = _hostile_names(self.root, uuid.uuid4().hex[:12])
        self._server: RunningServer | None = None
        self._failure: str | None = None
        self._bucket: tuple | None = None

    def server(self) -> RunningServer:
        if self._failure is not None:
            raise CheckFailed(self._failure)
        if self._server is None:
            try:
                if not inspect.iscoroutinefunction(self.fn):
                    raise CheckFailed(f"pass your `async def` function, e.g. check(save_upload, "
                                      f"presign_upload); got {self.fn!r}")
                self._server = start_lab_server("uploadlab", self.fn, self.root,
                                                folder=str(self.folder), max_file_bytes=LIMIT,
                                                read_timeout=5)
            except CheckFailed as exc:
                self._failure = str(exc)
                raise
        return self._server

    def post(self, body, timeout: float = 30, content_type: str | None = None) -> httpx.Response:
        sent = headers() if content_type is None else {"content-type": content_type}
        try:
            return httpx.post(self.server().url + "/upload", content=body, headers=sent,
                              timeout=timeout)
        except httpx.HTTPError as exc:
            raise CheckFailed(f"the upload failed: {describe_error(exc)}") from None

    def stored(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir())

    def clear(self) -> None:
        for path in self.folder.iterdir():
            path.unlink()

    def bucket(self) -> tuple:
        """(an S3 client, the name of a bucket made for this run), made on the first call."""
        if self._bucket is None:
            from botocore.config import Config

            from backendlab.services.s3 import s3_client
            s3 = s3_client(config=Config(signature_version="s3v4"))
            name = f"backendlab-lab02-{os.getpid()}-{time.time_ns() % 10**9}"
            s3.create_bucket(Bucket=name)
            self._bucket = (s3, name)
        return self._bucket

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        if self._bucket is not None:
            delete_bucket(*self._bucket)


def _hostile_names(root: Path, token: str) -> list[str]:
    """Hostile filenames unique to this run: a naive handler joining them to the folder writes
    `evil-TOKEN*.png` next to it (`../../`) or into the lab's root (an absolute path), both
    places the check then looks at exactly and cleans."""
    return [f"../../evil-{token}.png", f"{root}/evil-{token}-abs.png", "a\x00b.png",
            "\u202egnp.png", "x" * 500 + ".png"]


def _answer(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return body.get("error", str(body)) if isinstance(body, dict) else str(body)


def _expect(lab: _Lab, body, status: int, what: str, advice: str,
            content_type: str | None = None) -> None:
    """Send `body`; it must get `status`, and leave the folder empty."""
    response = lab.post(body, content_type=content_type)
    left = lab.stored()
    lab.clear()
    if response.status_code != status:
        raise CheckFailed(f"{what}: expected {status}, got {response.status_code} "
                          f"({_answer(response)}): {advice}")
    if left:
        raise CheckFailed(f"{what}: refused, but {len(left)} file(s) stayed in the folder: "
                          "remove every file of a request that fails (try/except around the "
                          "loop, delete, re-raise)")


def _good(lab: _Lab) -> str:
    parts = [Part("title", b"holiday"), Part("a", PNG, "a.png", "image/png"),
             Part("b", forms.SAMPLES["pdf"], "cv.pdf", "application/pdf")]
    response = lab.post(encode(parts))
    if response.status_code != 201:
        raise CheckFailed(f"a good upload (two files and a field) got {response.status_code}: "
                          f"{_answer(response)}")
    files = response.json()["files"]
    stored = lab.stored()
    lab.clear()
    if not isinstance(files, list) or len(files) != 2 or not all(isinstance(f, dict) for f in files):
        raise CheckFailed(f"return one dict per stored file (2 here), got {files!r}")
    names = sorted(str(f.get("stored_as")) for f in files)
    if names != stored:
        raise CheckFailed(f"stored_as {names} does not match the files in the folder {stored}")
    sizes = sorted(f.get("size") for f in files)
    if sizes != sorted([len(PNG), len(forms.SAMPLES["pdf"])]):
        raise CheckFailed(f"sizes {sizes}: count the bytes of each file as they arrive")
    return "2 files stored, sizes right"


def _oversized(lab: _Lab) -> str:
    _expect(lab, forms.big_file(LIMIT * 4), 413, f"a {LIMIT * 4 // 2**20} MB file against a "
            f"{LIMIT // 2**20} MB limit", "count each file's bytes as they arrive and raise "
            "Rejected(413, ...) as soon as the count passes limits.max_file_bytes")
    read = httpx.get(lab.server().url + "/stats").json()["last_upload_bytes"]
    if read > LIMIT + READ_SLACK:
        raise CheckFailed(f"413, but only after reading {read / 2**20:.1f} MB of the body: stop "
                          "reading as soon as the limit is crossed, before the rest arrives")
    return f"413 after reading {read / 2**20:.2f} MB (limit {LIMIT / 2**20:.0f} MB)"


def _counts(lab: _Lab) -> str:
    files = [Part(f"f{i}", PNG, f"{i}.png", "image/png") for i in range(4)]
    _expect(lab, encode(files), 413, "4 files (limit 3)", "count the parts with a filename and "
            "raise Rejected(413, ...) past limits.max_files")
    _expect(lab, encode([Part(f"k{i}", b"v") for i in range(11)]), 413, "11 fields (limit 10)",
            "count the parts without a filename and raise Rejected(413, ...) past "
            "limits.max_fields")
    _expect(lab, encode([Part("note", b"x" * FIELD_BYTES)]), 413,
            f"a {FIELD_BYTES // 1024} KB text field (limit {FIELD_LIMIT // 1024} KB)", "a text field is held in "
            "memory: count its bytes as they arrive and raise Rejected(413, ...) past "
            "limits.max_field_bytes")
    return f"413 for 4 files, for 11 fields and for a {FIELD_BYTES // 1024} KB field"


def _types(lab: _Lab) -> str:
    for what, data in (("an executable", forms.SAMPLES["elf"]), ("an HTML page", forms.SAMPLES["html"])):
        _expect(lab, encode([Part("f", data, "cat.png", "image/png")]), 415,
                f"{what} named cat.png, sent as image/png",
                "the Content-Type header and the name are the client's claims: check the first "
                "bytes with filetypes.check_magic before storing anything")
    return "415 for a renamed executable and a renamed HTML page"


def _names(lab: _Lab) -> str:
    hostile = lab.hostile
    response = lab.post(encode([Part(f"f{i}", PNG, name, "image/png")
                                for i, name in enumerate(hostile[:3])]))
    second = lab.post(encode([Part(f"f{i}", PNG, name, "image/png")
                              for i, name in enumerate(hostile[3:])]))
    stored = lab.stored()
    escaped = [path for path in (naive_destination(lab.folder, name) for name in hostile)
               if path.parent != lab.folder and path.exists()]
    for path in escaped:
        path.unlink()
    lab.clear()
    if escaped:
        raise CheckFailed(f"a file landed outside the upload folder ({escaped[0]}): never join "
                          "the client's filename to a path")
    if (response.status_code, second.status_code) != (201, 201):
        raise CheckFailed(f"hostile names should still be stored (under a generated name), got "
                          f"{response.status_code} and {second.status_code}: {_answer(response)}")
    bad = [name for name in stored if not GENERATED.fullmatch(name)]
    if bad or len(stored) != len(hostile):
        raise CheckFailed(f"stored as {bad or stored}: store under names.stored_name(ext) (a random "
                          "id), never under anything the client sent; show the client's name "
                          "through names.display_name only")
    return f"{len(hostile)} hostile names stored under generated names inside the folder"


def _framing(lab: _Lab) -> str:
    body = encode([Part("f", PNG, "a.png", "image/png")])
    _expect(lab, PNG, 415, "a raw PNG body sent as image/png, not multipart/form-data",
            "look at the media type of content_type first and raise Rejected(415, ...) unless "
            "it is multipart/form-data", content_type="image/png")
    _expect(lab, body, 400, "multipart/form-data with no boundary parameter",
            "a multipart Content-Type without boundary= cannot be parsed: raise "
            "Rejected(400, ...) instead of failing on the missing key",
            content_type="multipart/form-data")
    return "415 for a body that is not multipart/form-data, 400 for a missing boundary"


def _broken(lab: _Lab) -> str:
    whole = encode([Part("f", PNG, "a.png", "image/png")])
    _expect(lab, whole[:-25], 400, "a body cut off before its closing boundary",
            "after the last chunk, raise Rejected(400, ...) unless the parser reached the end "
            "(its on_end callback)")
    _expect(lab, encode([Part("f", b"", "empty.png", "image/png")]), 400, "an empty file",
            "check_magic refuses an empty file with 400: call it at the part's end too, when a "
            "file was shorter than HEAD_BYTES")
    return "400 for a truncated body and for an empty file"


def _memory(lab: _Lab) -> str:
    server = lab.server()
    lab.post(forms.big_file(100_000))
    with PeakWindow(server.pid) as window, ThreadPoolExecutor(BIG_USERS) as pool:
        answers = list(pool.map(lambda _: httpx.post(
            server.url + "/upload", content=forms.big_file(BIG, seconds=0.5), headers=headers(),
            timeout=60), range(BIG_USERS)))
    lab.clear()
    if any(a.status_code != 201 for a in answers):
        raise CheckFailed(f"the big uploads got {[a.status_code for a in answers]}: "
                          f"{_answer(answers[0])}; fix the checks above first")
    growth = window.growth
    measured = (f"the server's memory grew by {growth / 2**20:.1f} MB during {BIG_USERS} "
                f"uploads of {BIG // 2**20} MB at once")
    if growth > MEMORY_LIMIT:
        raise CheckFailed(f"{measured}, limit {MEMORY_LIMIT // 2**20} MB: you are holding files in "
                          "memory; write each piece to its file as it arrives")
    return f"{measured} (limit {MEMORY_LIMIT // 2**20} MB)"


def _presign_policy(lab: _Lab) -> str:
    from backendlab.topics.uploads.presign import policy_of
    ticket = _call_presign(lab)
    key = ticket["fields"].get("key", "")
    if not key.startswith("uploads/alice/") or "cat" in key:
        raise CheckFailed(f"the key {key!r} should be uploads/alice/ + a generated name "
                          "(presign.new_key): never the client's filename")
    policy = policy_of(ticket["fields"])
    conditions = policy.get("conditions", [])
    ranges = [c for c in conditions if isinstance(c, list) and c[0] == "content-length-range"]
    if not ranges or ranges[0][2] > 5000 or ranges[0][1] < 0:
        raise CheckFailed(f"no content-length-range up to max_bytes in the signed conditions "
                          f"{conditions}: without it a client may upload any size")
    if {"Content-Type": "image/png"} not in conditions and \
            ["eq", "$Content-Type", "image/png"] not in conditions:
        raise CheckFailed("the Content-Type is not pinned in the conditions: add "
                          "{'Content-Type': content_type} to Conditions and Fields")
    if ["starts-with", "$key", "uploads/alice/"] not in conditions:
        raise CheckFailed("the key prefix is not signed: add ['starts-with', '$key', "
                          "'uploads/alice/'] so the client cannot write elsewhere")
    expires = time.mktime(time.strptime(policy["expiration"][:19], "%Y-%m-%dT%H:%M:%S"))
    if expires - time.mktime(time.gmtime()) > 3600:
        raise CheckFailed("the policy lives more than an hour: use ExpiresIn of a few minutes")
    return "size range, Content-Type and key prefix signed, expiry within the hour"


def _presign_works(lab: _Lab) -> str:
    s3, bucket = lab.bucket()
    ticket = _call_presign(lab)
    sent = httpx.post(ticket["url"], data=ticket["fields"],
                      files={"file": ("cat.png", forms.png(900), "image/png")})
    if sent.status_code >= 300:
        raise CheckFailed(f"uploading with your presigned POST got {sent.status_code}: "
                          f"{sent.text[:200]}")
    head = s3.head_object(Bucket=bucket, Key=ticket["fields"]["key"])
    if head["ContentType"] != "image/png":
        raise CheckFailed(f"the object was stored as {head['ContentType']}: put Content-Type in "
                          "the Fields so the form sends it")
    return "a client uploaded with it straight to S3"


def _call_presign(lab: _Lab) -> dict:
    try:
        ticket = lab.presign(*lab.bucket(), "alice", "../../cat.png", "image/png", 5000)
    except Exception as exc:
        raise CheckFailed(f"presign_upload raised {describe_error(exc, lab.presign)}") from None
    if not isinstance(ticket, dict) or not {"url", "fields"} <= set(ticket):
        raise CheckFailed(f"return generate_presigned_post's dict (url and fields), got {ticket!r}")
    return ticket


UPLOAD_SUITE = [
    Check("a good upload: files stored whole, sizes returned", _good),
    Check("size limit enforced while streaming (413, read stops)", _oversized),
    Check("file and field counts and field size limited (413)", _counts),
    Check("types checked by their bytes (415)", _types),
    Check("hostile filenames cannot choose the path or the name", _names),
    Check("broken bodies refused (400), nothing left", _broken),
    Check("only multipart/form-data with a boundary (415, 400)", _framing),
    Check("memory stays flat with concurrent large uploads", _memory),
]
PRESIGN_SUITE = [
    Check("presign: size, type and key prefix signed", _presign_policy),
    Check("presign: a client can upload with it", _presign_works),
]


SUITE = UPLOAD_SUITE + PRESIGN_SUITE


def check(save_upload, presign_upload, only: str | list[str] | None = None) -> Report:
    """Run lab 02's checks (or the ones named in `only`); stops the server, removes the folder and
    the bucket afterwards."""
    names = [getattr(fn, "__name__", default) for fn, default in
             ((save_upload, "your function"), (presign_upload, "presign"))]
    return run_lab(f"Lab 02: {', '.join(names)}", SUITE,
                   lambda: _Lab(save_upload, presign_upload), only)
