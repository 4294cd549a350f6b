"""The streaming multipart reader: limits enforced as bytes arrive, nothing left on failure."""

import asyncio
import time

import pytest

from backendlab.topics.uploads import forms
from backendlab.servers.errors import Rejected
from backendlab.topics.uploads.filetypes import check_content_type
from backendlab.topics.uploads.forms import Part, encode
from backendlab.topics.uploads.limits import Limits, timed_receive
from backendlab.topics.uploads.multipart import MultipartReader, boundary_of
from backendlab.topics.uploads.names import stored_name
from backendlab.topics.uploads.sinks import FileSink, MemorySink

LIMITS = Limits(max_file_bytes=100_000, max_files=2, max_fields=2, max_field_bytes=100)


async def pieces(data: bytes, size: int):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def read(body, size: int = 4096, limits: Limits = LIMITS, folder=None, sink=FileSink, **kw):
    reader = MultipartReader(forms.content_type(), limits,
                             lambda ext, mime: sink(folder, stored_name(ext)), **kw)
    chunks = pieces(body, size) if isinstance(body, bytes) else body
    return reader, asyncio.run(reader.read(chunks))


def refused(body, folder, **kw) -> Rejected:
    with pytest.raises(Rejected) as caught:
        read(body, folder=folder, **kw)
    return caught.value


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_files_and_fields_are_read_whatever_the_chunk_size(tmp_path, size):
    body = encode([Part("title", "Zoë".encode()), Part("a", forms.png(3000), "../a.png", "image/png"),
                   Part("b", forms.SAMPLES["pdf"], "b.pdf", "application/pdf")])
    _, upload = read(body, size, folder=tmp_path)
    assert upload.fields == {"title": "Zoë"}
    assert [(f.field, f.name, f.size, f.type) for f in upload.files] == [
        ("a", "a.png", 3000, "image/png"), ("b", "b.pdf", len(forms.SAMPLES["pdf"]), "application/pdf")]
    assert {p.name for p in tmp_path.iterdir()} == {f.stored["stored_as"] for f in upload.files}
    assert (tmp_path / upload.files[0].stored["stored_as"]).read_bytes() == forms.png(3000)
    assert upload.bytes_read == len(body)


def test_memory_sink_stores_the_same_bytes(tmp_path):
    _, upload = read(encode([Part("a", forms.png(5000), "a.png", "image/png")]), folder=tmp_path,
                     sink=MemorySink)
    assert (tmp_path / upload.files[0].stored["stored_as"]).read_bytes() == forms.png(5000)


def test_an_oversized_file_is_cut_off_at_the_limit_and_removed(tmp_path):
    consumed = []

    async def counted():
        for chunk in forms.big_file(50 * LIMITS.max_file_bytes):
            consumed.append(len(chunk))
            yield chunk

    error = refused(counted(), tmp_path)
    assert error.status == 413 and "over the 100000-byte limit" in error.message
    assert sum(consumed) < LIMITS.max_file_bytes + 2 * forms.CHUNK
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("parts, status, words", [
    ([Part(f"f{i}", forms.png(600), f"{i}.png", "image/png") for i in range(3)], 413, "too many files"),
    ([Part(f"k{i}", b"v") for i in range(3)], 413, "too many fields"),
    ([Part("k", b"v" * 101)], 413, "field 'k' is over the 100-byte limit"),
    ([Part("f", forms.SAMPLES["elf"], "cat.png", "image/png")], 415, "application/x-executable"),
    ([Part("f", b"", "empty.png", "image/png")], 400, "is empty"),
])
def test_a_refused_part_leaves_nothing_of_the_request(tmp_path, parts, status, words):
    good = [Part("ok", forms.png(2000), "ok.png", "image/png")] if status != 413 or "files" not in words else []
    error = refused(encode(good + parts), tmp_path, size=512)
    assert (error.status, words in error.message) == (status, True), error.message
    assert list(tmp_path.iterdir()) == []


def test_a_truncated_body_is_400_and_leaves_nothing(tmp_path):
    body = encode([Part("a", forms.png(3000), "a.png", "image/png")])
    error = refused(body[:-30], tmp_path)
    assert error.status == 400 and "ended early" in error.message
    assert list(tmp_path.iterdir()) == []


def test_a_client_hanging_up_mid_file_leaves_nothing(tmp_path):
    async def hang_up():
        yield Part("a", filename="a.png", content_type="image/png").header() + forms.png(5000)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        read(hang_up(), folder=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_garbage_between_boundaries_is_a_400(tmp_path):
    body = b"--" + forms.BOUNDARY.encode() + b"\r\nthis is not a header line at all\r\n\r\nx"
    assert refused(body + b"\r\n--" + forms.BOUNDARY.encode() + b"--\r\n", tmp_path).status == 400


@pytest.mark.parametrize("header, status", [
    ("multipart/form-data", 400), ("multipart/form-data; boundary=", 400),
    ("image/png", 415), (None, 415)])
def test_content_type_must_be_multipart_with_a_boundary(header, status):
    with pytest.raises(Rejected) as caught:
        boundary_of(header)
    assert caught.value.status == status
    assert boundary_of(forms.content_type()) == forms.BOUNDARY.encode()


def test_the_type_check_is_pluggable(tmp_path):
    _, upload = read(encode([Part("f", forms.SAMPLES["elf"], "cat.png", "image/png")]),
                     folder=tmp_path, check_type=check_content_type)
    assert upload.files[0].type == "image/png"


def test_timed_receive_refuses_a_stalled_body_and_stops_timing_once_complete():
    async def scenario():
        async def stalled():
            await asyncio.sleep(1)

        with pytest.raises(Rejected) as caught:
            await timed_receive(stalled, 0.05, 10)()
        messages = iter([{"type": "http.request", "body": b"x", "more_body": False}])

        async def then_slow():
            message = next(messages, None)
            if message is None:
                await asyncio.sleep(0.1)
                return {"type": "http.disconnect"}
            return message

        receive = timed_receive(then_slow, 0.05, 10)
        assert (await receive())["body"] == b"x"
        assert (await receive())["type"] == "http.disconnect"
        return caught.value

    error = asyncio.run(scenario())
    assert error.status == 408 and "too slow" in error.message


def test_timed_receive_refuses_a_dripping_body_at_its_deadline():
    """Each piece comes well within the per-read timeout, yet the whole body has a deadline."""
    async def scenario():
        async def drip():
            await asyncio.sleep(0.05)
            return {"type": "http.request", "body": b"x", "more_body": True}

        receive = timed_receive(drip, 0.5, 0.4)
        began, pieces = time.monotonic(), 0
        with pytest.raises(Rejected) as caught:
            while True:
                await receive()
                pieces += 1
        return caught.value, pieces, time.monotonic() - began

    error, pieces, waited = asyncio.run(scenario())
    assert error.status == 408 and "longer than 0.4 s" in error.message
    assert 5 <= pieces <= 8 and 0.35 < waited < 0.6
