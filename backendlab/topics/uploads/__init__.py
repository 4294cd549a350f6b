"""Topic 02, file uploads done right, one concept per module. The topic's server (`server`), lab
02's server (`labserver`) and checks (`checks`), the experiments of notebook 02 (`experiments`)
and the question bank live here too. Every module refuses a request with the servers' one error,
`backendlab.servers.errors.Rejected`: an HTTP status and a message for the client.

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
