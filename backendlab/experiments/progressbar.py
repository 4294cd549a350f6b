"""A tqdm bar whose saved notebook output shows where it ended, not where it began.

`tqdm.auto` shows a widget in a notebook; a saved notebook (nbconvert, GitHub) keeps only the
widget's text as it was first drawn, "0%". Here, inside a Jupyter kernel, the text bar is one
display output updated in place (`update_display_data`), which the executed notebook stores in
its final state; elsewhere it is tqdm's usual terminal bar.
"""

from __future__ import annotations

from tqdm.std import tqdm


class _DisplayLine:
    """A file for tqdm that shows the last line written as one notebook output, kept updated."""

    def __init__(self):
        self.handle = None

    def write(self, text: str) -> None:
        from IPython.display import display
        line = text.strip("\r\n").rstrip()
        if not line:  # tqdm also writes bare line ends and blank-outs
            return
        if self.handle is None:
            self.handle = display({"text/plain": line}, raw=True, display_id=True)
        else:
            self.handle.update({"text/plain": line}, raw=True)

    def flush(self) -> None:
        pass


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def progress(total: int, desc: str, enabled: bool = True) -> tqdm:
    """A bar for `total` steps; use it as a context manager so it closes at 100%."""
    return tqdm(total=total, desc=desc, disable=not enabled, leave=True, ncols=80,
                file=_DisplayLine() if _in_kernel() else None)
