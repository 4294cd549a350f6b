"""A client's filename is untrusted text: show a cleaned copy, store under a generated name.

`../../etc/cron.d/x`, `/etc/passwd`, `a\x00.png`, ten thousand characters, or an RTL override
that makes `exe.png` read as `gnp.exe`: joined to a folder, such a name writes outside it, fails,
or fools a human. The stored name is a random id plus an extension from the allowlist; the cleaned
original is only ever displayed (or sent back in Content-Disposition).
"""

from __future__ import annotations

import os
import unicodedata
import uuid
from pathlib import Path, PurePosixPath

from pathvalidate import sanitize_filename

MAX_NAME_CHARS = 100
FALLBACK = "unnamed"


def display_name(original: str) -> str:
    """The name to show a user: last path segment, no control or bidi characters, NFKC,
    filesystem-safe characters, at most MAX_NAME_CHARS (the extension kept)."""
    text = unicodedata.normalize("NFKC", original or "")
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("C"))
    text = PurePosixPath(text.replace("\\", "/")).name
    if len(text) > MAX_NAME_CHARS:
        stem, dot, ext = text.rpartition(".")
        keep = "." + ext[:10] if dot and stem else ""
        text = text[:MAX_NAME_CHARS - len(keep)] + keep
    return sanitize_filename(text, replacement_text="_").strip(" .") or FALLBACK


def extension(name: str) -> str:
    """The lower-case extension of a (cleaned) name, without the dot; "" when there is none."""
    stem, dot, ext = display_name(name).rpartition(".")
    return ext.lower() if dot and stem else ""


def stored_name(ext: str) -> str:
    """A fresh name for a stored file: 32 random hex digits and the allowlisted extension."""
    return f"{uuid.uuid4().hex}.{ext}"


def naive_destination(folder: str | os.PathLike, original: str) -> Path:
    """Where `folder + "/" + original` lands, resolved: the mistake this module avoids."""
    return Path(os.path.normpath(os.path.join(folder, original.replace("\x00", ""))))


def inside(folder: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Whether `path` is `folder` itself or lies under it (after resolving `..`)."""
    root = Path(os.path.normpath(folder))
    target = Path(os.path.normpath(path))
    return target == root or root in target.parents
