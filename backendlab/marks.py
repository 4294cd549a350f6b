"""Verdict marks that read in any font: coloured words in HTML, plain words in text.

Emoji such as a green tick need an emoji font, which many browsers and terminals lack (they draw
an empty box). The quiz, the lab check reports and doctor all mark verdicts with these instead.
"""

from __future__ import annotations

import html

COLOURS = {"right": "#2e7d32", "wrong": "#c62828", "missed": "#ef6c00"}
STYLE = ("display:inline-block;padding:0 0.45em;margin-right:0.35em;border-radius:0.3em;"
         "font-size:0.85em;font-weight:bold;color:#fff;background:{colour}")


def badge(kind: str, text: str) -> str:
    """`text` on a coloured label: `kind` is right (green), wrong (red) or missed (orange). The
    class `backendlab-badge <kind>` is what the browser tests find."""
    style = STYLE.format(colour=COLOURS[kind])
    return f'<span class="backendlab-badge {kind}" style="{style}">{html.escape(text)}</span>'


def verdict(passed: bool) -> str:
    """The word a text report puts before a check: 'pass' or 'FAIL' (the failures stand out)."""
    return "pass" if passed else "FAIL"
