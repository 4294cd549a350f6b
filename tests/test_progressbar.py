"""The experiments' progress bar: in a kernel, one display output that ends showing 100%."""

import IPython.display

from backendlab.experiments import progressbar


class FakeHandle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, data, raw):
        self.shown.append(data["text/plain"])


def test_in_a_kernel_the_one_output_is_left_at_its_final_state(monkeypatch):
    shown = []
    displays = []

    def display(data, raw, display_id):
        displays.append(data)
        shown.append(data["text/plain"])
        return FakeHandle(shown)

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setattr(progressbar, "_in_kernel", lambda: True)
    with progressbar.progress(3, "steps") as bar:
        for _ in range(3):
            bar.update()
    assert len(displays) == 1, "one output, updated in place"
    assert shown[0].startswith("steps:   0%")
    assert shown[-1].startswith("steps: 100%") and "3/3" in shown[-1]


def test_outside_a_kernel_it_is_a_terminal_bar_and_can_be_hidden(capsys):
    with progressbar.progress(2, "terminal") as bar:
        bar.update(2)
    assert "terminal: 100%" in capsys.readouterr().err
    with progressbar.progress(2, "hidden", enabled=False) as bar:
        bar.update(2)
    assert "hidden" not in capsys.readouterr().err
