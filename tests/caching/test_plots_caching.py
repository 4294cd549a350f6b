"""Notebook 05's results draw themselves: hand-built results, no Redis or server needed."""

from backendlab.topics.caching import experiments as ca
from backendlab.topics.caching.experiments.keys import Answer


def title(fig) -> str:
    return fig._suptitle.get_text()


def legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_cold_vs_warm_draws_both_passes_with_their_medians():
    fig = ca.ColdWarm([0.05] * 3, [0.001] * 3, ["miss"] * 3, ["hit"] * 3, 3, 0.05).plot()
    assert title(fig) == "The same 3 pages twice: cached, the median is 50x faster (log scale)"
    assert [t.get_text() for t in fig.axes[0].texts] == ["median 50.0 ms", "median 1.0 ms"]


def test_expiry_draws_the_keys_alive_and_marks_the_ttl():
    fig = ca.Expiry(0.6, 6, 0.05, times=[0, 0.5, 1], alive=[6, 6, 0]).plot()
    assert title(fig) == "6 cached keys vanish by themselves 0.6 s after they were set"
    assert legend(fig.axes[0]) == ["keys in Redis", "TTL: 0.6 s"]


def test_the_ttl_sweep_draws_both_ratios_against_the_ttl():
    runs = [ca.Workload(f"TTL {ttl:g} s", reads=10, hits=hits, stale=stale)
            for ttl, hits, stale in ((0.1, 2, 0), (1.0, 6, 2), (10.0, 9, 7))]
    fig = ca.TtlSweep((0.1, 1.0, 10.0), runs).plot()
    ax = fig.axes[0]
    assert title(fig) == "Longer TTL: more hits, and more stale reads"
    assert [line.get_label() for line in ax.get_lines()] == ["hit ratio", "stale-read ratio"]
    assert list(ax.get_lines()[0].get_ydata()) == [0.2, 0.6, 0.9] and ax.get_xscale() == "log"
    assert ca.TtlSweep((0.1,), runs[:1])[0] is runs[0], "a sweep is the list of its runs"


def test_key_designs_draw_three_counts_per_scheme():
    good = Answer("page 1", None, [1], [1], None, "miss")
    wrong = Answer("page 2", None, [2], [1], None, "hit")
    designs = ca.KeyDesigns(naive=ca.KeyDesignRun("naive", [], [good, wrong], 1),
                            designed=ca.KeyDesignRun("designed", [], [good, good], 2))
    fig = designs.plot()
    counts, keys = fig.axes
    assert title(fig) == ("The same 2 requests: designed answers 2 right with 2 keys;\n"
                          "naive serves another user's orders 0 times")
    assert counts.get_ylabel() == "requests (of 2)" and keys.get_ylabel() == "keys"
    assert legend(counts) == ["wrong answers", "another user's orders"] and len(counts.patches) == 4
    assert [t.get_text() for t in keys.texts] == ["1", "2"], "keys on their own axis"


def test_invalidation_runs_draw_hit_and_stale_ratios_per_strategy():
    runs = ca.InvalidationRuns(ttl=5.0)
    runs.update(ttl=ca.Workload("ttl", reads=10, hits=9, stale=4),
                delete=ca.Workload("delete", reads=10, hits=6))
    fig = runs.plot()
    assert title(fig) == ("TTL 5 s: ttl 40% stale, delete 0% stale\n"
                          "(invalidating on write costs some hits)")
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["0.00", "0.40", "0.60", "0.90"]


def test_stampede_runs_draw_reads_per_expiry_and_mode():
    herd = ca.StampedeRuns(none=ca.StampedeRun("none", 30, [25, 28]), lock=ca.StampedeRun("lock", 30, [1, 1]))
    fig = herd.plot()
    ax = fig.axes[0]
    assert title(fig) == ("30 requests at once on an expired key,\n"
                          "database reads per burst: none up to 28, lock up to 1")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["expiry 1", "expiry 2"]
    assert legend(ax) == ["none", "lock"]


def test_instance_pairs_draw_stale_reads_per_store():
    fig = ca.InstancePairs(memory=ca.TwoInstances("memory", 8, 8), redis=ca.TwoInstances("redis", 8, 0)).plot()
    ax = fig.axes[0]
    assert title(fig) == ("A write through instance A, then a read through B,\n"
                          "stale reads: memory 8 of 8, redis 0 of 8")
    assert ax.get_ylabel() == "stale reads on B (of 8)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["memory cache", "redis cache"]


def test_the_outage_shades_the_outage_and_colours_outcomes():
    outage = ca.Outage(0.5, 1.5, times=[0, 1, 2], latency=[0.001, 0.03, 0.001], how=["hit", "bypass", "hit"],
                       status=[200] * 3)
    fig = outage.plot()
    assert title(fig) == ("Redis down 1.0 s: 1 requests answered from the database, 0 errors "
                          "(latency, log scale)")
    assert legend(fig.axes[0]) == ["hit", "bypass", "cache down"]
    assert fig.axes[0].get_yscale() == "log"
