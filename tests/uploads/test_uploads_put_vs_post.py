"""A presigned PUT beside a presigned POST, and the bucket CORS rule a browser's preflight meets."""

import pytest

from backendlab.topics.uploads import experiments as ex
from backendlab.topics.uploads.experiments.put_vs_post import APP_ORIGIN, OTHER_ORIGIN


@pytest.fixture(scope="module")
def run():
    return ex.put_vs_post(max_bytes=2000)


def test_a_put_signs_the_content_type_and_no_size_while_a_post_policy_bounds_both(run):
    assert "content-type" in run.signed["PUT"] and "content-length" not in run.signed["PUT"]
    assert "content-length-range 1 2000" in run.signed["POST"]
    assert "starts-with $key uploads/alice/" in run.signed["POST"]


def test_s3_takes_an_oversized_put_and_the_completion_check_refuses_it(run):
    attempts = run.by_case()
    assert (attempts["PUT a PNG within the limit"].s3_status,
            attempts["PUT a PNG within the limit"].completion) == (200, 201)
    oversized = attempts["PUT a PNG 3x over the limit"]
    assert oversized.s3_status == 200 and oversized.completion == 422
    assert "6000 bytes" in oversized.answer


def test_a_post_over_its_range_or_a_put_with_another_type_is_refused_by_s3_or_on_completion(run):
    attempts = run.by_case()
    for case in ("POST a PNG 3x over the limit", "PUT sent as text/html, signed image/png"):
        attempt = attempts[case]
        if run.emulated:  # moto enforces no presign rule: the completion check is the guard
            assert attempt.s3_status < 300 and attempt.completion == 422, attempt
        else:
            assert 400 <= attempt.s3_status < 500 and attempt.completion == 409, attempt


def test_only_the_allowed_origin_gets_access_control_allow_origin(run):
    if not run.preflights:
        pytest.skip("this S3 has no bucket CORS API (MinIO sets CORS server-wide)")
    allowed = run.allowed_origins()
    assert allowed[APP_ORIGIN] == APP_ORIGIN
    assert allowed[OTHER_ORIGIN] == ""


def test_the_figure_shows_every_attempt(run):
    fig = run.plot()
    assert len(fig.axes[0].patches) == 2 * len(run.attempts) == 10
    assert "PUT takes any size" in fig._suptitle.get_text()
