"""The experiments' progress bar: in a kernel, one display output, a real bar with a text fallback,
that ends showing 100%."""

import re

import IPython.display

from backendlab import progressbar


class FakeHandle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, data, raw):
        self.shown.append(data)


def run_in_fake_kernel(monkeypatch, steps: int) -> tuple[list, list]:
    """Run a bar of `steps` with IPython's display replaced; the new outputs and every state shown."""
    shown, displays = [], []

    def display(data, raw, display_id):
        assert raw and display_id
        displays.append(data)
        shown.append(data)
        return FakeHandle(shown)

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setattr(progressbar, "_in_kernel", lambda: True)
    with progressbar.progress(steps, "steps") as bar:
        for _ in range(steps):
            bar.update()
    return displays, shown


def test_in_a_kernel_the_one_output_is_left_at_its_final_state(monkeypatch):
    displays, shown = run_in_fake_kernel(monkeypatch, 3)
    assert len(displays) == 1, "one output, updated in place"
    assert shown[0]["text/plain"].startswith("steps:   0%")
    assert shown[-1]["text/plain"].startswith("steps: 100%") and "3/3" in shown[-1]["text/plain"]


def test_the_output_is_a_real_bar_beside_the_text(monkeypatch):
    _, shown = run_in_fake_kernel(monkeypatch, 4)
    first, last = shown[0]["text/html"], shown[-1]["text/html"]
    assert '<progress value="0" max="4"' in first
    assert '<progress value="4" max="4"' in last
    assert "<span>steps</span>" in last
    stats = re.search(r"<code>(.*)</code>", last).group(1)
    assert stats.startswith("100% 4/4 [") and "#" not in stats, "numbers, no second text bar"


def test_text_in_the_bar_is_escaped():
    shown = progressbar.bar_html("a <b>", 1, 2, "50% 1/2 [00:01<00:01]")
    assert "<span>a &lt;b&gt;</span>" in shown and "<code>50% 1/2 [00:01&lt;00:01]</code>" in shown


def test_a_bar_without_a_total_is_indeterminate(monkeypatch):
    monkeypatch.setattr(progressbar, "_in_kernel", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda data, raw, display_id: FakeHandle([]))
    with progressbar.progress(None, "open-ended") as bar:
        bar.update(3)
        assert bar.stats().startswith("3 [")
    assert "<progress style=" in progressbar.bar_html("open-ended", 3, None, "3 [00:00]")


def test_outside_a_kernel_it_is_a_terminal_bar_and_can_be_hidden(capsys):
    with progressbar.progress(2, "terminal") as bar:
        bar.update(2)
    assert "terminal: 100%" in capsys.readouterr().err
    with progressbar.progress(2, "hidden", enabled=False) as bar:
        bar.update(2)
    assert "hidden" not in capsys.readouterr().err
