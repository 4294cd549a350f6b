"""What lab 02's checks run the learner's code with: the `Lab` (their handler in an uploadlab
server over a fresh folder, their presign function and a bucket), and a request whose answer and
leftovers it judges.
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from backendlab.checks import CheckFailed, describe_error
from backendlab.checks.child import start_lab_server
from backendlab.servers import RunningServer
from backendlab.services.s3 import delete_bucket
from backendlab.topics.uploads.forms import headers

LIMIT = 8 * 2**20


class Lab:
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


def answer(response: httpx.Response) -> str:
    """What the server said: the error of a JSON answer, else the start of its body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return body.get("error", str(body)) if isinstance(body, dict) else str(body)


def expect(lab: Lab, body, status: int, what: str, advice: str,
           content_type: str | None = None) -> None:
    """Send `body`; it must get `status`, and leave the folder empty."""
    response = lab.post(body, content_type=content_type)
    left = lab.stored()
    lab.clear()
    if response.status_code != status:
        raise CheckFailed(f"{what}: expected {status}, got {response.status_code} "
                          f"({answer(response)}): {advice}")
    if left:
        raise CheckFailed(f"{what}: refused, but {len(left)} file(s) stayed in the folder: "
                          "remove every file of a request that fails (try/except around the "
                          "loop, delete, re-raise)")
