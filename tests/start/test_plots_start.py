"""Notebook 00's figure draws itself from a hand-built TTL watch."""

from backendlab.topics.start.tour import TTLWatch


def test_the_ttl_watch_marks_when_the_key_went_and_the_ttl_set():
    fig = TTLWatch(1.0, times=[0, 0.5, 1.0, 1.2], remaining_ms=[1000, 500, -2, -2]).plot()
    ax = fig.axes[0]
    assert fig._suptitle.get_text() == "A Redis key's TTL counting down"
    assert list(ax.get_lines()[0].get_ydata()) == [1.0, 0.5], "only the samples while it lived"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "PTTL (s left)", "key gone at 1.00 s", "TTL set: 1 s"]
