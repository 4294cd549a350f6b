"""Topic 01, event loop blocking vs streaming: the upload server whose handlers block or stream
(`server`), the RQ job and scheduler of its durable queue (`durable_jobs`), the experiments of
notebook 01 (`experiments`), lab 01's CSV server (`labserver`) and checks (`checks`), and the
question bank."""
