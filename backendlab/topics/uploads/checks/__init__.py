"""Lab 02's checks: a secure streaming upload handler, and a presigned POST with conditions.

`check(save_upload, presign_upload)` ships the handler to a real uploadlab server (see
`backendlab.checks.child`), sends it good and hostile uploads, looks at the upload folder after
each, and measures the server's peak memory while three paced 6 MB uploads run at once. It calls
the presign function against the suite's S3 and reads the policy it signed. The memory limit sits
between what a streaming handler (under 1 MB) and one holding the files (18 MB or more) measure.
Hostile filenames carry a token unique to each run: the check looks exactly where a naive
`folder + filename` would write them and removes what it finds, so no run leaves files behind.

Modules: `harness` (the `Lab`: the server, the folder, the bucket), `upload_checks` and
`presign_checks` (the checks of each function).
"""

from __future__ import annotations

from backendlab.checks import Report, run_lab
from backendlab.topics.uploads.checks.harness import Lab
from backendlab.topics.uploads.checks.presign_checks import PRESIGN_SUITE
from backendlab.topics.uploads.checks.upload_checks import UPLOAD_SUITE

__all__ = ["PRESIGN_SUITE", "SUITE", "UPLOAD_SUITE", "check"]

SUITE = UPLOAD_SUITE + PRESIGN_SUITE


def check(save_upload, presign_upload, only: str | list[str] | None = None) -> Report:
    """Run lab 02's checks (or the ones named in `only`); stops the server, removes the folder and
    the bucket afterwards."""
    names = [getattr(fn, "__name__", default) for fn, default in
             ((save_upload, "your function"), (presign_upload, "presign"))]
    return run_lab(f"Lab 02: {', '.join(names)}", SUITE,
                   lambda: Lab(save_upload, presign_upload), only)
