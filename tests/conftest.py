"""Shared test set-up: keep Jupyter, IPython, matplotlib and quiz progress out of $HOME, and give
tests a way to reach the real services of this machine (skipped when absent, unless required)."""

import atexit
import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from backendlab import config

collect_ignore = ["browser/quiz.ipynb"]

# The system's temp folder, as the first test process found it: a worker inherits TMPDIR from the
# controller, and nesting their folders would make socket paths too long for Chromium.
_system_temp = os.environ.setdefault("BACKENDLAB_TESTS_SYSTEM_TEMP", tempfile.gettempdir())
_scratch = Path(tempfile.mkdtemp(prefix="backendlab-tests-", dir=_system_temp))
atexit.register(shutil.rmtree, _scratch, ignore_errors=True)
# Each test process (each xdist worker) has a temp folder of its own, inherited by the kernels and
# servers it starts: a test or notebook that checks it left no temp folder behind sees its own
# worker's only, never a folder another worker is using at that moment.
(_scratch / "tmp").mkdir()
os.environ["TMPDIR"] = str(_scratch / "tmp")
tempfile.tempdir = None
for var, sub in (("MPLCONFIGDIR", "matplotlib"), ("IPYTHONDIR", "ipython"),
                 ("JUPYTER_CONFIG_DIR", "jupyter-config"), ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"),
                 ("BACKENDLAB_PROGRESS", "progress.json")):
    os.environ.setdefault(var, str(_scratch / sub))

# The real services to compare against: BACKENDLAB_TEST_* if set, else what the suite is
# configured with (backendlab.env after `make services`), else this machine kind's local ones.
REAL_REDIS_URL = (os.environ.get("BACKENDLAB_TEST_REDIS_URL") or config.get("REDIS_URL")
                  or "redis://127.0.0.1:6379/0")
REAL_DATABASE_URL = (os.environ.get("BACKENDLAB_TEST_DATABASE_URL") or config.get("DATABASE_URL")
                     or "postgresql://postgres@127.0.0.1:5432/test")
SERVICE_VARS = ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "S3_ENDPOINT_URL", "DATABASE_URL")


def need_real(service, address: str) -> None:
    """Skip (or fail, when BACKENDLAB_REQUIRE_REAL=1 as in CI) if a real service does not answer."""
    try:
        service.probe(address)
    except Exception as exc:
        message = f"real {service.name} at {address} does not answer ({exc})"
        if os.environ.get("BACKENDLAB_REQUIRE_REAL") == "1":
            pytest.fail(message + "; BACKENDLAB_REQUIRE_REAL=1 requires it")
        pytest.skip(message)


def blank_service_env(patch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No service configured, no shared embedded address, no backendlab.env: a blank machine."""
    for var in SERVICE_VARS:
        patch.delenv(var, raising=False)
        patch.delenv(f"BACKENDLAB_SHARED_{var}", raising=False)
    for var in ("BACKENDLAB_EMBEDDED", "BACKENDLAB_REDIS_ENGINE"):
        patch.delenv(var, raising=False)
    patch.setenv("BACKENDLAB_CONFIG", str(_scratch / "no-such-backendlab.env"))
    return patch


@pytest.fixture
def clean_service_env(monkeypatch):
    """A blank machine (see `blank_service_env`) for one test."""
    return blank_service_env(monkeypatch)


REDIS_ENGINES = ["real", "redis-server", "fakeredis"]
# The two ways the suite runs: this machine's real services, or none configured, so the embedded
# defaults start (redis-server when installed, else fakeredis). Experiments, servers and lab checks
# run both ways; the Redis primitives they build on (`test_services_redis`, the Lua scripts) run
# on every engine, so fakeredis stays proven where redis-server is installed.
SUITE_MODES = ["real", "embedded"]
# An experiment runs both ways in `make test` without running twice in one mode: its notebook runs
# it under nbval with the embedded defaults (`make test` configures no service), and its unit test
# runs it on this machine's real services.
EXPERIMENT_MODES = ["real"]


def use_redis_engine(patch: pytest.MonkeyPatch, engine: str, service) -> None:
    """Point a Redis `service` at one engine through the environment: this machine's real Redis,
    the embedded default, or an embedded redis-server or fakeredis; skip when that engine is
    absent."""
    if engine == "real":
        patch.setenv("REDIS_URL", REAL_REDIS_URL)
        need_real(service, REAL_REDIS_URL)
    elif engine == "embedded":
        patch.setenv("BACKENDLAB_EMBEDDED", "1")
    else:
        patch.setenv("BACKENDLAB_EMBEDDED", "1")
        patch.setenv("BACKENDLAB_REDIS_ENGINE", engine)
        if service.engine() != engine:
            pytest.skip(f"{engine} is not installed here")


@contextlib.contextmanager
def suite_redis_on(engine: str):
    """The suite's own Redis (the one experiments, servers and checks resolve) on `engine` for
    the block; yields the engine's name."""
    from backendlab.services.redis import service

    service.stop()  # before the environment changes, so no stale shared address comes back
    with pytest.MonkeyPatch.context() as patch:
        use_redis_engine(blank_service_env(patch), engine, service)
        try:
            service.address()
            yield engine
        finally:
            service.stop()


@pytest.fixture(scope="module", params=REDIS_ENGINES)
def suite_redis(request):
    """The suite's own Redis on each engine in turn, for a whole module: the same assertions run
    on real Redis, redis-server and fakeredis."""
    with suite_redis_on(request.param) as engine:
        yield engine


@pytest.fixture(scope="module", params=SUITE_MODES)
def suite_redis_both_ways(request):
    """The suite's own Redis, real and then the embedded default, for a whole module."""
    with suite_redis_on(request.param) as engine:
        yield engine


@pytest.fixture(scope="module", params=EXPERIMENT_MODES)
def experiment_redis(request):
    """The suite's own Redis for a module of experiment tests (see EXPERIMENT_MODES)."""
    with suite_redis_on(request.param) as engine:
        yield engine


@pytest.fixture
def unique() -> str:
    """A short unique name for keys, tables, topics and buckets made by one test."""
    return "bltest" + uuid.uuid4().hex[:10]


@contextlib.contextmanager
def suite_redis_sql_on(mode: str):
    """The suite's own Redis and SQL services (those experiments and servers resolve) for the
    block: this machine's real Redis and PostgreSQL, or the embedded defaults (SQLite)."""
    from backendlab.services import redis as redis_service, sql as sql_service

    services = (redis_service.service, sql_service.service)
    for service in services:
        service.stop()  # before the environment changes, so no stale shared address comes back
    with pytest.MonkeyPatch.context() as patch:
        use_redis_engine(blank_service_env(patch), mode, services[0])
        if mode == "real":
            patch.setenv("DATABASE_URL", REAL_DATABASE_URL)
            need_real(services[1], REAL_DATABASE_URL)
        try:
            yield mode
        finally:
            for service in services:
                service.stop()


@pytest.fixture(scope="module", params=SUITE_MODES)
def suite_redis_sql(request):
    """The suite's own Redis and SQL, real and then embedded, for a whole module."""
    with suite_redis_sql_on(request.param) as mode:
        yield mode


@pytest.fixture(scope="module", params=EXPERIMENT_MODES)
def experiment_redis_sql(request):
    """The suite's own Redis and SQL for a module of experiment tests (see EXPERIMENT_MODES)."""
    with suite_redis_sql_on(request.param) as mode:
        yield mode


@contextlib.contextmanager
def kafka_for_tests():
    """The broker Kafka tests use: embedded Tansu, unless BACKENDLAB_TEST_KAFKA_BOOTSTRAP_SERVERS
    names a real one; yields its bootstrap address and stops the embedded one after."""
    from backendlab.services.kafka import service

    service.stop()
    with pytest.MonkeyPatch.context() as patch:
        blank_service_env(patch)
        real = os.environ.get("BACKENDLAB_TEST_KAFKA_BOOTSTRAP_SERVERS")
        patch.setenv(*(("KAFKA_BOOTSTRAP_SERVERS", real) if real else ("BACKENDLAB_EMBEDDED", "1")))
        try:
            yield service.address()
        finally:
            service.stop()
    forget_stopped_shared_addresses()


def forget_stopped_shared_addresses() -> None:
    """Drop a BACKENDLAB_SHARED_* address that a monkeypatch restored after its service was
    stopped inside the patched block: left behind, it points every later resolver (notebook
    kernels included) at a dead port."""
    from backendlab.services import SERVICES

    for service in SERVICES:
        shared = os.environ.get(service.shared_var)
        if shared and service._address != shared:
            del os.environ[service.shared_var]


@pytest.fixture(autouse=True)
def no_stale_shared_address():
    """Before each test, drop the shared addresses of embedded services an earlier test (or a
    module fixture's monkeypatch, restored after its service stopped) left behind: a notebook
    kernel or server started by this test would inherit them and find nothing there."""
    forget_stopped_shared_addresses()


def pytest_addoption(parser):
    parser.addoption("--topic", default=None, metavar="NN",
                     help="run one topic's tests only (its number or slug): tests/<slug>/, its "
                          "notebook and the tests parametrized by it (its lab proofs, which run "
                          "its solution)")


def pytest_collection_modifyitems(config, items):
    """With --topic, keep the items of that topic (see `topic_owns`) and deselect the others;
    then put the long scopes first (see `longest_first`)."""
    keep_topic(config, items)
    items[:] = longest_first(items)


# Topic folders whose files may run at once on different workers: each file of kafkaretry starts
# its own embedded broker and names its Redis keys with a fresh id, and uploads' files name their
# buckets with a fresh id. The other topics' files check that nothing is left under the topic's
# shared key prefix or tables, so each such folder runs whole on one worker.
FILE_SCOPED_FOLDERS = {"tests/kafkaretry", "tests/uploads"}


def scope_of(nodeid: str) -> str:
    """What one xdist worker runs whole: a topic's test folder (or, in FILE_SCOPED_FOLDERS, one
    of its files), or one file or notebook."""
    path = nodeid.split("::")[0]
    folder = "/".join(path.split("/")[:2])
    return folder if in_topic_folder(nodeid) and folder not in FILE_SCOPED_FOLDERS else path


def in_topic_folder(nodeid: str) -> bool:
    """Whether a test lives in a topic's folder, tests/<slug>/."""
    parts = nodeid.split("::")[0].split("/")
    return parts[0] == "tests" and len(parts) > 2


def longest_first(items: list) -> list:
    """Topic folders and their files first (the most tests first), then notebooks and the files
    marked `long_file`, then the other files: workers take scopes in this order, so the long ones
    start early and short files fill the end, instead of a long scope starting last and running
    on alone (collection order is alphabetical)."""
    sizes: dict[str, int] = {}
    for item in items:
        sizes[scope_of(item.nodeid)] = sizes.get(scope_of(item.nodeid), 0) + 1

    def rank(item) -> tuple[int, int]:
        scope = scope_of(item.nodeid)
        if in_topic_folder(item.nodeid):
            return 0, -sizes[scope]
        return (1 if scope.endswith(".ipynb") or item.get_closest_marker("long_file")
                else 2), 0
    return sorted(items, key=rank)


def keep_topic(config, items: list) -> None:
    """With --topic, deselect every item that topic does not own."""
    key = config.getoption("--topic")
    if not key:
        return
    from backendlab import catalog

    try:
        topic = catalog.topic(key)
    except KeyError as exc:
        raise pytest.UsageError(str(exc.args[0])) from None
    kept = [item for item in items if topic_owns(topic, item.nodeid)]
    if not kept:
        raise pytest.UsageError(f"topic {topic.number} ({topic.slug}) has no tests yet")
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


def topic_owns(topic, nodeid: str) -> bool:
    """Whether a test belongs to `topic`: under tests/<slug>/, in its notebook, or parametrized
    by its notebook or its slug (the lab proofs, which run its solution; its question bank)."""
    return (nodeid.startswith((f"tests/{topic.slug}/", f"notebooks/{topic.stem}.ipynb"))
            or f"[{topic.stem}]" in nodeid or f"[{topic.slug}]" in nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`make test` runs on three xdist workers; each topic's test folder goes to one worker
    whole, so a topic's tests never share its Redis keys, tables or topics with each other at
    once, and each notebook runs in one worker, cell after cell. Other test files are spread one
    by one."""
    from xdist.scheduler import LoadScopeScheduling

    class ByTopic(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return ByTopic(config, log)
