"""Types are decided by magic bytes and an extension allowlist, not by the declared type."""

import pytest

from backendlab.servers.errors import Rejected
from backendlab.topics.uploads.filetypes import (check_content_type, check_magic, checker, media_type,
                                                 sniff)
from backendlab.topics.uploads.forms import SAMPLES, png


def test_sniff_reads_signatures():
    assert sniff(SAMPLES["png"]) == "image/png"
    assert sniff(SAMPLES["pdf"]) == "application/pdf"
    assert sniff(SAMPLES["elf"]) == "application/x-executable"
    assert sniff(SAMPLES["html"]) is None
    assert sniff(b"\xff\xd8\xff\xe0" + bytes(40)) == "image/jpeg"


def test_media_type_drops_parameters_and_case():
    assert media_type("Image/PNG; charset=binary") == "image/png"
    assert media_type(None) == ""


def test_a_real_file_passes_and_gets_its_canonical_extension():
    assert check_magic("image/png", "cat.png", png(600)) == "png"
    assert check_magic("image/jpeg", "me.JPEG", b"\xff\xd8\xff\xe0" + bytes(600)) == "jpg"
    assert check_magic("application/pdf", "cv.pdf", SAMPLES["pdf"]) == "pdf"


@pytest.mark.parametrize("declared, name, data, status, words", [
    ("image/png", "cat.png", SAMPLES["elf"], 415, "really application/x-executable"),
    ("image/png", "cat.png", SAMPLES["html"], 415, "not a recognised file type"),
    ("image/png", "cat.png", SAMPLES["pdf"], 415, "named .png but its bytes are application/pdf"),
    ("application/pdf", "cat.png", png(600), 415, "declared application/pdf"),
    ("image/png", "cat.exe", png(600), 415, "extension .exe is not allowed"),
    ("image/png", "noextension", png(600), 415, "without an extension"),
    ("image/png", "cat.png", b"", 400, "is empty"),
])
def test_magic_check_refuses_what_does_not_match(declared, name, data, status, words):
    with pytest.raises(Rejected) as refused:
        check_magic(declared, name, data)
    assert refused.value.status == status and words in refused.value.message


def test_the_content_type_check_is_fooled_by_a_renamed_executable():
    assert check_content_type("image/png", "cat.png", SAMPLES["elf"]) == "png"
    with pytest.raises(Rejected, match="text/html is not allowed"):
        check_content_type("text/html", "page.html", SAMPLES["html"])
    assert checker("magic") is check_magic and checker("content-type") is check_content_type
