"""Lab 02's checks of the upload handler: good uploads stored whole, limits enforced while
streaming, types checked by their bytes, hostile names harmless, broken bodies refused, memory flat.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx

from backendlab.checks import Check, CheckFailed, within
from backendlab.peak import PeakWindow
from backendlab.topics.uploads import forms
from backendlab.topics.uploads.checks.harness import LIMIT, Lab, answer, expect
from backendlab.topics.uploads.forms import Part, encode, headers
from backendlab.topics.uploads.limits import Limits
from backendlab.topics.uploads.names import naive_destination

BIG, BIG_USERS = 6 * 2**20, 3
MEMORY_LIMIT = 4 * 2**20  # two thirds of one file: a streaming handler holds a chunk (~0 MB idle,
# 2.1 MB measured beside the whole test suite), one holding files holds at least one whole 6 MB file
# even when the uploads do not overlap
READ_SLACK = 512 * 1024  # asyncio reads a socket up to 256 KB at a time
PNG = forms.png(3000)
FIELD_LIMIT = Limits().max_field_bytes  # the lab server keeps the default field limit
FIELD_BYTES = 4 * FIELD_LIMIT
GENERATED = re.compile(r"[0-9a-f]{32}\.(png|jpg|gif|webp|pdf)")


def _good(lab: Lab) -> str:
    parts = [Part("title", b"holiday"), Part("a", PNG, "a.png", "image/png"),
             Part("b", forms.SAMPLES["pdf"], "cv.pdf", "application/pdf")]
    response = lab.post(encode(parts))
    if response.status_code != 201:
        raise CheckFailed(f"a good upload (two files and a field) got {response.status_code}: "
                          f"{answer(response)}")
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


def _oversized(lab: Lab) -> str:
    expect(lab, forms.big_file(LIMIT * 4), 413, f"a {LIMIT * 4 // 2**20} MB file against a "
           f"{LIMIT // 2**20} MB limit", "count each file's bytes as they arrive and raise "
           "Rejected(413, ...) as soon as the count passes limits.max_file_bytes")
    read = httpx.get(lab.server().url + "/stats").json()["last_upload_bytes"]
    if read > LIMIT + READ_SLACK:
        raise CheckFailed(f"413, but only after reading {read / 2**20:.1f} MB of the body: stop "
                          "reading as soon as the limit is crossed, before the rest arrives")
    return f"413 after reading {read / 2**20:.2f} MB (limit {LIMIT / 2**20:.0f} MB)"


def _counts(lab: Lab) -> str:
    files = [Part(f"f{i}", PNG, f"{i}.png", "image/png") for i in range(4)]
    expect(lab, encode(files), 413, "4 files (limit 3)", "count the parts with a filename and "
           "raise Rejected(413, ...) past limits.max_files")
    expect(lab, encode([Part(f"k{i}", b"v") for i in range(11)]), 413, "11 fields (limit 10)",
           "count the parts without a filename and raise Rejected(413, ...) past "
           "limits.max_fields")
    expect(lab, encode([Part("note", b"x" * FIELD_BYTES)]), 413,
           f"a {FIELD_BYTES // 1024} KB text field (limit {FIELD_LIMIT // 1024} KB)", "a text field is held in "
           "memory: count its bytes as they arrive and raise Rejected(413, ...) past "
           "limits.max_field_bytes")
    return f"413 for 4 files, for 11 fields and for a {FIELD_BYTES // 1024} KB field"


def _types(lab: Lab) -> str:
    for what, data in (("an executable", forms.SAMPLES["elf"]), ("an HTML page", forms.SAMPLES["html"])):
        expect(lab, encode([Part("f", data, "cat.png", "image/png")]), 415,
               f"{what} named cat.png, sent as image/png",
               "the Content-Type header and the name are the client's claims: check the first "
               "bytes with filetypes.check_magic before storing anything")
    return "415 for a renamed executable and a renamed HTML page"


def _names(lab: Lab) -> str:
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
                          f"{response.status_code} and {second.status_code}: {answer(response)}")
    bad = [name for name in stored if not GENERATED.fullmatch(name)]
    if bad or len(stored) != len(hostile):
        raise CheckFailed(f"stored as {bad or stored}: store under names.stored_name(ext) (a random "
                          "id), never under anything the client sent; show the client's name "
                          "through names.display_name only")
    return f"{len(hostile)} hostile names stored under generated names inside the folder"


def _framing(lab: Lab) -> str:
    body = encode([Part("f", PNG, "a.png", "image/png")])
    expect(lab, PNG, 415, "a raw PNG body sent as image/png, not multipart/form-data",
           "look at the media type of content_type first and raise Rejected(415, ...) unless "
           "it is multipart/form-data", content_type="image/png")
    expect(lab, body, 400, "multipart/form-data with no boundary parameter",
           "a multipart Content-Type without boundary= cannot be parsed: raise "
           "Rejected(400, ...) instead of failing on the missing key",
           content_type="multipart/form-data")
    return "415 for a body that is not multipart/form-data, 400 for a missing boundary"


def _broken(lab: Lab) -> str:
    whole = encode([Part("f", PNG, "a.png", "image/png")])
    expect(lab, whole[:-25], 400, "a body cut off before its closing boundary",
           "after the last chunk, raise Rejected(400, ...) unless the parser reached the end "
           "(its on_end callback)")
    expect(lab, encode([Part("f", b"", "empty.png", "image/png")]), 400, "an empty file",
           "check_magic refuses an empty file with 400: call it at the part's end too, when a "
           "file was shorter than HEAD_BYTES")
    return "400 for a truncated body and for an empty file"


def _memory(lab: Lab) -> str:
    server = lab.server()
    lab.post(forms.big_file(100_000))
    with PeakWindow(server.pid) as window, ThreadPoolExecutor(BIG_USERS) as pool:
        answers = list(pool.map(lambda _: httpx.post(
            server.url + "/upload", content=forms.big_file(BIG, seconds=0.5), headers=headers(),
            timeout=60), range(BIG_USERS)))
    lab.clear()
    if any(a.status_code != 201 for a in answers):
        raise CheckFailed(f"the big uploads got {[a.status_code for a in answers]}: "
                          f"{answer(answers[0])}; fix the checks above first")
    growth = window.growth
    measured = (f"the server's memory grew by {growth / 2**20:.1f} MB during {BIG_USERS} "
                f"uploads of {BIG // 2**20} MB at once")
    return within(measured, growth, MEMORY_LIMIT, f"{MEMORY_LIMIT // 2**20} MB", "you are "
                  "holding files in memory; write each piece to its file as it arrives")


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
