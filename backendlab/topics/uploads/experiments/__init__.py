"""Experiments of notebook 02: file uploads done right, and presigned S3 URLs.

1. `storage_modes`: concurrent large uploads kept in memory, spooled, or streamed; server RSS.
2. `size_limit`: an oversized upload cut off at the limit: how much the server read, what is left.
3. `type_checks` and `hostile_names`: spoofed types against a Content-Type check and a
   magic-bytes check; hostile filenames and where they would have landed.
4. `proxied_vs_direct` and `completion_checks`: the same files through the server into S3, or
   straight to S3 with a presigned POST (the server's bytes, CPU and memory); completing an
   upload checks what S3 holds.
5. `signed_downloads` and `s3_enforcement`: who may download, expiry and tampering, on this
   server's HMAC links and on S3's presigned URLs (and what the embedded emulator skips, as
   `s3_is_emulated` tells).
6. `bad_inputs`: the catalogue of hostile and broken uploads, and what is left afterwards.
7. `put_vs_post`: a presigned PUT beside a presigned POST (what each signs, which oversized or
   mistyped body S3 or the completion check refuses), and a bucket CORS rule met by preflights.
`leftovers` lists what such runs could leave behind, for a notebook to compare at its end;
`upload_server` and `direct_upload` are the server and the browser's part the experiments use.
"""

from backendlab.topics.uploads.experiments.bad_inputs import BadInputResult, bad_inputs
from backendlab.topics.uploads.experiments.common import Case, direct_upload, upload_server
from backendlab.topics.uploads.experiments.completion_checks import completion_checks
from backendlab.topics.uploads.experiments.hostile_names import NameRun, hostile_names
from backendlab.topics.uploads.experiments.leftovers import leftovers
from backendlab.topics.uploads.experiments.proxied_vs_direct import ProxyComparison, proxied_vs_direct
from backendlab.topics.uploads.experiments.put_vs_post import (APP_ORIGIN, OTHER_ORIGIN, PutVsPost,
                                                             put_vs_post)
from backendlab.topics.uploads.experiments.s3_enforcement import s3_enforcement, s3_is_emulated
from backendlab.topics.uploads.experiments.signed_downloads import signed_downloads
from backendlab.topics.uploads.experiments.size_limit import LimitRun, size_limit
from backendlab.topics.uploads.experiments.storage_modes import StorageComparison, storage_modes
from backendlab.topics.uploads.experiments.type_checks import type_checks

__all__ = ["APP_ORIGIN", "BadInputResult", "Case", "LimitRun", "NameRun", "OTHER_ORIGIN", "ProxyComparison", "PutVsPost", "StorageComparison",
           "bad_inputs", "completion_checks", "direct_upload", "hostile_names", "leftovers",
           "proxied_vs_direct", "put_vs_post", "s3_enforcement", "s3_is_emulated", "signed_downloads", "size_limit",
           "storage_modes", "type_checks", "upload_server"]
