"""Notebook 07's results draw themselves: hand-built results, no broker, Redis or worker needed."""

from backendlab.topics.kafkaretry.backoff import Backoff
from backendlab.topics.kafkaretry.experiments.at_least_once import AtLeastOnceRun, ModeRun
from backendlab.topics.kafkaretry.experiments.backoff_schedule import (DueTimeRun, LoopRun, Overrun,
                                                                       retry_schedule)
from backendlab.topics.kafkaretry.experiments.blocking import BlockingRun
from backendlab.topics.kafkaretry.experiments.dead_letters import DeadLettersRun, Message
from backendlab.topics.kafkaretry.experiments.handler_errors import HandlerErrorsRun, StrategyRun
from backendlab.topics.kafkaretry.experiments.notifications import Failure, NotificationRun, Push, Sent
from backendlab.topics.kafkaretry.experiments.rebalance import Ownership, Rebalance, RebalanceRun
from backendlab.topics.kafkaretry.experiments.worker import WorkerLog
from backendlab.topics.kafkaretry.notifications.sink import ReceivedEmail
from backendlab.topics.kafkaretry.replay import Moved, ReplayReport


def title(fig) -> str:
    return fig._suptitle.get_text()


def test_handler_errors_draw_one_strip_per_strategy():
    swallow = StrategyRun("swallow", 4, delivered=[0, 1, 2, 3], handled=[0, 2, 3], committed=4, log_end=4)
    crash = StrategyRun("crash", 4, delivered=[0, 1, 1], handled=[0], committed=1, log_end=4)
    fig = HandlerErrorsRun(4, (1,), 1, swallow, crash).plot()
    assert title(fig).startswith("A handler raised: swallowed, the record is lost; ")
    assert len(fig.axes) == 1


def test_blocking_draws_latency_and_lag_per_mode():
    run = BlockingRun(2, [0], Backoff(), 3, {0: 0.0, 1: 0.1, 2: 0.2},
                      {"blocking": {1: 900.0, 2: 800.0}, "retry topics": {1: 5.0, 2: 6.0}},
                      {"blocking": [(0, 0), (1, 2)], "retry topics": [(0, 0), (1, 0)]}, {}, 2.0)
    fig = run.plot()
    left, right = fig.axes
    assert title(fig) == ("A poison message retried in place holds up healthy ones:\nlag up to 2 vs 0 "
                          "with retry topics, p50 latency 155x lower")
    assert [line.get_label() for line in right.get_lines()] == ["blocking", "retry topics"]
    assert left.get_yscale() == "log"


def test_the_retry_schedule_draws_load_and_delays():
    fig = retry_schedule(failures=20).plot()
    left, right = fig.axes
    assert title(fig).startswith("20 messages fail at once: without jitter up to 20 retry in the same ")
    assert [line.get_label() for line in left.get_lines()] == ["no jitter", "full jitter"]
    assert right.get_title() == "Delay per retry"


def test_the_due_time_run_draws_lateness_and_poll_gaps():
    loops = {name: LoopRun(name, [(1, 1000, 1010), (2, 2000, 2030)], [0.0, 0.1, 0.2])
             for name in ("pause and resume", "sleep in the loop")}
    run = DueTimeRun(Backoff(), 3, 100, loops, Overrun(500, 800, 1, [], [], [0.0, 0.9]), 3.0)
    fig = run.plot()
    gaps, late = fig.axes
    assert title(fig) == ("Pausing the partition keeps polling (longest gap 100 ms); sleeping stops it "
                          "(100 ms),\nand past max.poll.interval the consumer is thrown out and handles "
                          "the message twice")
    assert gaps.get_ylabel() == "time between two polls (ms)", "what pausing wins comes first"
    assert len(late.patches) == 4 and late.get_title().startswith("The price of pausing")
    assert "max_poll_interval_ms=500" in [t.get_text() for t in gaps.get_legend().get_texts()]


def test_dead_letters_draw_each_message_fate_and_the_paced_replay():
    messages = [Message("a", "healthy", 0, b"", before="handled"),
                Message("b", "transient", 1, b"", before="dlt exhausted", after="handled"),
                Message("c", "fatal", 2, b"", before="dlt fatal", after="dlt fatal")]
    replay = ReplayReport("dlt", "g", 2.0, [Moved("d:0:1", "s:0:3", None, 0.0),
                                           Moved("d:0:2", "s:0:4", None, 0.5)])
    fig = DeadLettersRun(None, 3, 2.0, 0, messages, [], [], replay, [], {}).plot()
    fates, pace = fig.axes
    assert title(fig) == "Dead letters: transient ones come back, fatal ones return to the DLT"
    assert [t.get_text() for t in fates.get_legend().get_texts()] == ["handled", "dlt fatal", "dlt exhausted"]
    assert [t.get_text() for t in pace.get_legend().get_texts()] == ["copies sent", "2 per second"]


def test_at_least_once_draws_counts_and_the_side_effects_in_order():
    def mode(name, effects):
        return ModeRun(name, ["order-000", "order-001"], effects, WorkerLog(effects=effects[:1], committed=[0]),
                       WorkerLog(), -9)
    run = AtLeastOnceRun(2, 2, 0, mode("naive", ["order-000", "order-000", "order-001"]),
                         mode("idempotent", ["order-000", "order-001"]),
                         mode("retry-topic", ["order-000", "order-000", "order-001"]), 1.0, 0)
    counts, timeline = run.plot().axes
    assert [t.get_text() for t in counts.get_xticklabels()] == ["produced", "side effects", "duplicates", "lost"]
    assert [line.get_label() for line in timeline.get_lines()][:3] == ["naive", "idempotent", "retry-topic"]


def test_notifications_draw_one_lane_per_channel_and_user():
    sent = [Sent("e1", "email", "ana", 1000), Sent("e2", "push", "dana", 1100)]
    run = NotificationRun(1000, 3, 600, sent,
                          [ReceivedEmail("e1", "s", ("ana",), "subject", "body", 1200)],
                          [Push("dana", "e2", 1800)], {"dana": 1500},
                          [Failure("e2", 1, "transient", "offline", 1300, 1900, False)], [], {}, 1.0)
    fig = run.plot()
    assert title(fig) == "1 emails and 1 pushes delivered through 1 retries; 0 dead-lettered"
    assert "email (SMTP)" in [t.get_text() for t in fig.axes[0].get_yticklabels()]


def test_the_rebalance_run_draws_owners_and_throughput():
    events = [Ownership(0.0, "a", "assigned", (0, 1)), Ownership(1.0, "a", "revoked", (0, 1)),
              Ownership(1.5, "a", "assigned", (0,)), Ownership(1.5, "b", "assigned", (1,))]
    joins = [Rebalance("b joins", started=1.0, settled=1.5, pause=0.5),
             Rebalance("c joins", started=1.8, settled=1.9, idle=["c"], pause=0.1)]
    run = RebalanceRun(2, ["a", "b", "c"], 10, 0.5, events, joins,
                       set(), {"a": [(0.2, 0, 0)], "b": [(1.7, 1, 0)]}, 0, ended=2.0)
    fig = run.plot()
    owners, rates = fig.axes
    assert title(fig) == ("2 partitions keep at most 2 consumers busy (c idle); each rebalance paused "
                          "the group 0.1-0.1 s")
    assert run.idle_spans() == [("c", 1.8, 2.0)], "from its join to the end of the run"
    assert len(owners.patches) == 4 + 1 + 2, "four ownership spans, the idle lane and two bands"
    assert [t.get_text() for t in owners.get_yticklabels()] == ["a", "b", "c"], "a lane per consumer"
    assert [line.get_label() for line in rates.get_lines()] == ["a", "b"], "c handled nothing"
