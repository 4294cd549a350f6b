"""File uploads done right, one concept per module (notebook 02, its server and lab 02).

- `errors`: `Rejected`, the refusal every module raises: an HTTP status and a message for the client.
- `limits`: the limits an upload endpoint enforces (file size, file and field counts, timeouts).
- `names`: the client's filename is untrusted text: neutralised for display, never used as a path.
- `filetypes`: the declared Content-Type is a claim; magic bytes plus an extension allowlist decide.
- `multipart`: a streaming multipart/form-data reader that enforces the limits as bytes arrive.
- `sinks`: where a file part's bytes go: memory, a local file, or S3 (multipart upload).
- `presign`: presigned POST (upload) and GET (download) for S3, and the check that an object is
  what was promised.
- `signing`: an HMAC-signed, expiring URL: the mechanism behind S3's signatures, made small.
- `metadata`: the SQL table of completed uploads.
"""
