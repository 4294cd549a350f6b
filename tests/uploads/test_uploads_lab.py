"""Lab 02's server and checks: typical wrong answers fail the check that is about them.

The handlers below are built on the package's own reader, each with one classic mistake.
"""

import contextlib
import dataclasses
import os
import re
import tempfile

import pytest
from python_multipart.multipart import parse_options_header

from backendlab.topics.uploads import checks as lab02
from backendlab.topics.uploads.filetypes import check_content_type
from backendlab.servers.errors import Rejected
from backendlab.topics.uploads.multipart import MultipartReader
from backendlab.topics.uploads.names import stored_name
from backendlab.topics.uploads.sinks import FileSink, MemorySink
from backendlab.topics.uploads.presign import presigned_post


async def reference(chunks, content_type, folder, limits):
    reader = MultipartReader(content_type, limits, lambda ext, mime: FileSink(folder, stored_name(ext)))
    return [f.as_dict() for f in (await reader.read(chunks)).files]


async def buffering(chunks, content_type, folder, limits):
    """Reads the whole body first, then parses it (and keeps files in memory)."""
    body = [chunk async for chunk in chunks]

    async def again():
        for chunk in body:
            yield chunk

    reader = MultipartReader(content_type, limits, lambda ext, mime: MemorySink(folder, stored_name(ext)))
    return [f.as_dict() for f in (await reader.read(again())).files]


async def unlimited(chunks, content_type, folder, limits):
    reader = MultipartReader(content_type, dataclasses.replace(limits, max_file_bytes=2**62),
                             lambda ext, mime: FileSink(folder, stored_name(ext)))
    return [f.as_dict() for f in (await reader.read(chunks)).files]


async def trusting(chunks, content_type, folder, limits):
    reader = MultipartReader(content_type, limits, lambda ext, mime: FileSink(folder, stored_name(ext)),
                             check_content_type)
    return [f.as_dict() for f in (await reader.read(chunks)).files]


async def client_names(chunks, content_type, folder, limits):
    """Stores each file under the (cleaned) name the client sent."""
    files = (await MultipartReader(content_type, limits, lambda ext, mime: FileSink(
        folder, stored_name(ext))).read(chunks)).files
    for f in files:
        os.rename(os.path.join(folder, f.stored["stored_as"]), os.path.join(folder, f.name))
        f.stored["stored_as"] = f.name
    return [f.as_dict() for f in files]


async def any_type(chunks, content_type, folder, limits):
    """Takes the boundary from any Content-Type, multipart or not."""
    params = (content_type or "").partition(";")[2]
    reader = MultipartReader("multipart/form-data;" + params, limits,
                             lambda ext, mime: FileSink(folder, stored_name(ext)))
    return [f.as_dict() for f in (await reader.read(chunks)).files]


async def boundary_assumed(chunks, content_type, folder, limits):
    """Checks the media type, then indexes the boundary as if it were always there."""
    media, params = parse_options_header(content_type)
    if media != b"multipart/form-data":
        raise Rejected(415, "send multipart/form-data")
    boundary = params[b"boundary"].decode()
    reader = MultipartReader(f"multipart/form-data; boundary={boundary}", limits,
                             lambda ext, mime: FileSink(folder, stored_name(ext)))
    return [f.as_dict() for f in (await reader.read(chunks)).files]


async def unlimited_fields(chunks, content_type, folder, limits):
    reader = MultipartReader(content_type, dataclasses.replace(limits, max_field_bytes=2**62),
                             lambda ext, mime: FileSink(folder, stored_name(ext)))
    return [f.as_dict() for f in (await reader.read(chunks)).files]


async def naive_join(chunks, content_type, folder, limits):
    """Also writes a byte at `folder + the client's filename` for each file."""
    body = b"".join([chunk async for chunk in chunks])
    for name in re.findall(rb'filename="([^"]*)"', body):
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(folder, name.decode()), "wb") as out:
                out.write(b"x")

    async def again():
        yield body

    reader = MultipartReader(content_type, limits, lambda ext, mime: FileSink(folder, stored_name(ext)))
    return [f.as_dict() for f in (await reader.read(again())).files]


def unconditional(s3, bucket, user, filename, content_type, max_bytes):
    return s3.generate_presigned_post(bucket, f"uploads/{user}/{stored_name('png')}", ExpiresIn=300)


def client_key(s3, bucket, user, filename, content_type, max_bytes):
    return presigned_post(s3, bucket, f"uploads/{user}/{filename}", content_type, max_bytes)


def good_presign(s3, bucket, user, filename, content_type, max_bytes):
    return presigned_post(s3, bucket, f"uploads/{user}/{stored_name('png')}", content_type, max_bytes)


def verdicts(handler, presign=good_presign):
    report = lab02.check(handler, presign)
    return {r.name: r.passed for r in report.results}, report


NAMES = [c.name for c in lab02.UPLOAD_SUITE + lab02.PRESIGN_SUITE]
CHECK = {c.run.__name__.strip("_"): c.name for c in lab02.UPLOAD_SUITE + lab02.PRESIGN_SUITE}
PRESIGNS = [c.name for c in lab02.PRESIGN_SUITE]


def failing(handler, presign=good_presign):
    passed, report = verdicts(handler, presign)
    return sorted(name for name, ok in passed.items() if not ok), report


def test_the_reference_handler_passes_every_check():
    failed, report = failing(reference)
    assert failed == [], str(report)


@pytest.mark.parametrize("handler, expected", [
    (buffering, ["oversized", "memory"]),
    (unlimited, ["oversized"]),
    (trusting, ["types"]),
    (client_names, ["names"]),
    (any_type, ["framing"]),
    (boundary_assumed, ["framing"]),
    (unlimited_fields, ["counts"]),
])
def test_a_typical_mistake_fails_its_check(handler, expected):
    failed, report = failing(handler)
    assert failed == sorted(CHECK[name] for name in expected), str(report)


@pytest.mark.parametrize("handler, hint", [
    (any_type, "expected 415"),
    (boundary_assumed, "no boundary parameter: expected 400, got 500"),
    (unlimited_fields, "text field (limit 64 KB): expected 413, got 201"),
])
def test_a_new_framing_or_field_check_names_what_was_ignored(handler, hint):
    _, report = failing(handler)
    assert any(hint in r.message for r in report.results if not r.passed), str(report)


def test_a_check_run_leaves_nothing_outside_its_folder(tmp_path, monkeypatch):
    """A handler joining the client's name to the folder writes outside it; the check catches it
    and removes the file, so the temp folder is as empty afterwards as before."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    failed, report = failing(naive_join)
    assert CHECK["names"] in failed, str(report)
    assert "landed outside the upload folder" in report.results[NAMES.index(CHECK["names"])].message
    assert list(tmp_path.iterdir()) == []


def test_a_presign_without_conditions_or_with_the_client_name_fails():
    first = NAMES.index(PRESIGNS[0])
    failed, report = failing(reference, unconditional)
    assert failed == sorted(PRESIGNS), str(report)
    assert "content-length-range" in report.results[first].message
    assert "put Content-Type in the Fields" in report.results[first + 1].message
    failed, report = failing(reference, client_key)
    assert failed == [PRESIGNS[0]] and "never the client's filename" in report.results[first].message


def test_a_function_that_is_not_async_gets_a_hint():
    passed, report = verdicts(lambda chunks, content_type, folder, limits: [])
    assert not any(passed[c.name] for c in lab02.UPLOAD_SUITE)
    assert "pass your `async def` function" in report.results[0].message


def test_a_notebooks_wrapped_open_travels_as_the_builtin(tmp_path):
    """IPython binds its own `open` (a wrapper of the builtin) in a kernel's namespace; a handler
    that writes files with `open` must still ship to the lab server."""
    import builtins
    import functools
    import importlib.util

    from backendlab.checks.child import function_module

    @functools.wraps(builtins.open)
    def notebook_open(*args, **kwargs):
        return builtins.open(*args, **kwargs)

    path = tmp_path / "cell.py"
    path.write_text("def writes(path):\n    with open(path, 'w') as f:\n        f.write('x')\n")
    spec = importlib.util.spec_from_file_location("cell", path)
    cell = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cell)
    cell.open = notebook_open
    assert function_module(cell.writes).startswith("\n\n\ndef writes(path):")
    cell.open = lambda *args: None
    with pytest.raises(Exception, match="uses `open` from elsewhere"):
        function_module(cell.writes)
