"""Client filenames are neutralised for display; stored names are generated."""

import re

import pytest

from backendlab.topics.uploads.names import (MAX_NAME_CHARS, display_name, extension, inside,
                                             naive_destination, stored_name)


@pytest.mark.parametrize("sent, shown", [
    ("../../etc/cron.d/evil.png", "evil.png"),
    ("/etc/passwd", "passwd"),
    ("C:\\Windows\\evil.png", "evil.png"),
    ("nul\x00byte.png", "nulbyte.png"),
    ("\u202egnp.exe", "gnp.exe"),
    ("ｆｉｌｅ．ＰＮＧ", "file.PNG"),
    ("Zoë 東京.jpg", "Zoë 東京.jpg"),
    ("a:b*c?.png", "a_b_c_.png"),
    ("..", "unnamed"),
    ("", "unnamed"),
    (" . ", "unnamed"),
])
def test_display_name_keeps_only_a_harmless_last_segment(sent, shown):
    assert display_name(sent) == shown


def test_an_overlong_name_is_cut_and_keeps_its_extension():
    shown = display_name("x" * 10_000 + ".png")
    assert len(shown) == MAX_NAME_CHARS and shown.endswith(".png")


def test_extension_comes_from_the_cleaned_name():
    assert [extension(n) for n in ("a.PNG", "../x.jpg", "noext", ".png", "ｆ．ＰＤＦ")] == \
        ["png", "jpg", "", "", "pdf"]


def test_stored_names_are_random_and_carry_only_the_extension():
    names = {stored_name("png") for _ in range(100)}
    assert len(names) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}\.png", name) for name in names)


def test_the_naive_join_escapes_the_folder_for_traversal_and_absolute_names(tmp_path):
    assert not inside(tmp_path, naive_destination(tmp_path, "../../x.png"))
    assert not inside(tmp_path, naive_destination(tmp_path, "/etc/passwd"))
    assert inside(tmp_path, naive_destination(tmp_path, "photo.png"))
    assert inside(tmp_path, tmp_path)
