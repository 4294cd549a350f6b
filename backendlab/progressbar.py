"""A tqdm bar drawn as a real bar in a notebook, whose saved output shows where it ended.

`tqdm.notebook` draws a widget, but a saved notebook (nbconvert, GitHub) keeps only the widget's
text as first drawn, "0%". Here, inside a Jupyter kernel, the bar is one display output updated in
place (`update_display_data`): an HTML `<progress>` element with tqdm's numbers beside it, and
tqdm's text bar as the plain fallback, so the executed notebook stores it at 100%. Elsewhere it is
tqdm's usual terminal bar.
"""

from __future__ import annotations

import html
import io

from tqdm.std import tqdm


class NotebookBar(tqdm):
    """tqdm drawing itself as one notebook output, kept updated, instead of writing to a file."""

    def __init__(self, *args, **kwargs):
        self.handle = None
        super().__init__(*args, file=io.StringIO(), **kwargs)

    def display(self, msg=None, pos=None) -> bool:
        from IPython.display import display

        text = str(self) if msg is None else msg
        if not text:
            return True
        bundle = {"text/plain": text,
                  "text/html": bar_html(self.desc, self.n, self.total, self.stats())}
        if self.handle is None:
            self.handle = display(bundle, raw=True, display_id=True)
        else:
            self.handle.update(bundle, raw=True)
        return True

    def stats(self) -> str:
        """tqdm's numbers without its text bar: '100% 4/4 [00:03<00:00, 1.12it/s]'."""
        layout = STATS if self.total else STATS_NO_TOTAL
        return self.format_meter(**{**self.format_dict, "bar_format": layout})


STATS = "{percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
STATS_NO_TOTAL = "{n_fmt} [{elapsed}, {rate_fmt}{postfix}]"


def bar_html(desc: str, done: float, total: float | None, stats: str) -> str:
    """`desc`, a `<progress>` bar filled `done` of `total` (moving when there is no total), then
    the numbers in monospace."""
    value = f' value="{done}" max="{total}"' if total else ""
    return (f'<div style="display:flex;align-items:center;gap:0.6em">'
            f'<span>{html.escape(desc)}</span>'
            f'<progress{value} style="width:16em;height:1em"></progress>'
            f'<code>{html.escape(stats)}</code></div>')


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def progress(total: int, desc: str, enabled: bool = True) -> tqdm:
    """A bar for `total` steps; use it as a context manager so it closes at 100%."""
    kind = NotebookBar if _in_kernel() else tqdm
    return kind(total=total, desc=desc, disable=not enabled, leave=True, ncols=80)
