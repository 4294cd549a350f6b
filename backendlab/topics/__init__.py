"""One package per topic, named by the topic's slug in `backendlab.catalog`.

A topic's package holds its domain code (one concept per module), `server.py` (and `labserver.py`,
the server its lab's checks drive), `experiments` (what the notebook runs, one module per
experiment), `checks` (the lab's checks, a package) and `questions.yaml` (its question bank).
Topics build on the kit (`backendlab.services`, `processes`, `measure`, `plots`, `quiz`, `checks`,
`servers`); the kit imports no topic.
"""
