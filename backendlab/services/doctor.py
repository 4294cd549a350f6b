"""The doctor: one table saying, for each service, whether it is real or embedded and if it answers.

An instructor runs `backendlab doctor` on every machine before a workshop; the exit code
is non-zero when a configured (real) service does not answer.
"""

from __future__ import annotations

from backendlab.services import kafka, redis, s3, sql
from backendlab.services.base import ServiceInfo

SERVICES = (redis.service, kafka.service, s3.service, sql.service)


def check_all() -> list[ServiceInfo]:
    """Resolve and probe every service (starting embedded ones as needed)."""
    return [service.info() for service in SERVICES]


def render_text(rows: list[ServiceInfo]) -> str:
    """The table as plain text for a terminal."""
    header = ("service", "mode", "address", "version", "reachable", "note")
    lines = [(r.name, r.mode, r.address, r.version, "yes" if r.reachable else "NO", r.detail)
             for r in rows]
    widths = [max(len(str(row[i])) for row in (header, *lines)) for i in range(len(header) - 1)]
    out = []
    for row in (header, *lines):
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths)] + [str(row[-1])]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def render_html(rows: list[ServiceInfo]) -> str:
    """The table as HTML for a notebook."""
    import html
    from backendlab import marks

    def reachable(yes: bool) -> str:
        return marks.badge("right", "yes") if yes else marks.badge("wrong", "no")
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
            r.name, r.mode, r.address, r.version)) + f"<td>{reachable(r.reachable)}</td>"
        f"<td>{html.escape(str(r.detail))}</td></tr>"
        for r in rows)
    head = "".join(f"<th>{h}</th>" for h in
                   ("service", "mode", "address", "version", "reachable", "note"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class DoctorReport:
    """What `doctor()` returns: shows as a table in a notebook and as text in a terminal."""

    def __init__(self, rows: list[ServiceInfo]):
        self.rows = rows

    @property
    def ok(self) -> bool:
        return all(row.reachable for row in self.rows)

    def _repr_html_(self) -> str:
        return render_html(self.rows)

    def __str__(self) -> str:
        return render_text(self.rows)

    __repr__ = __str__


def doctor() -> DoctorReport:
    """Check every service and return the report."""
    return DoctorReport(check_all())
