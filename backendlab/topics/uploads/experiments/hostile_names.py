"""Experiment 3b: hostile filenames, where a naive join would have written them, and where the
server stored them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

from backendlab.topics.uploads import forms
from backendlab.topics.uploads.forms import Part, encode, headers
from backendlab.topics.uploads.names import inside, naive_destination
from backendlab.topics.uploads.experiments.common import upload_server

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
