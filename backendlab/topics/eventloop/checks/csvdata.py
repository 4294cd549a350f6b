"""The CSVs lab 01's checks send, and the summary the contract asks for: computed from the whole
text at once (`reference`), and compared with what the learner's function returned.
"""

from __future__ import annotations

import csv
import io
import math
import random
from functools import lru_cache

HEADER = ["customer", "amount", "quantity", "discount"]
LABELS = ["acme", "Smith, Jane", "Zoë", "東京商店", "O'Brien", "Ødegaard"]
SAMPLE = """customer,amount,quantity,discount
acme,12.50,3,0.10
"Smith, Jane",7.25,1,0
Zoë,n/a,2,0.05
東京商店,100,4

Ødegaard,40.75,2,0.25
"""


def reference(text: str) -> dict:
    """The summary the contract asks for, computed from the whole text at once."""
    lines = csv.reader(text.split("\n"))
    columns = next((fields for fields in lines if fields), [])
    sums = dict.fromkeys(columns[1:], 0.0)
    rows = malformed = 0
    for fields in lines:
        if not fields:
            continue
        try:
            if len(fields) != len(columns):
                raise ValueError
            values = [float(field) for field in fields[1:]]
        except ValueError:
            malformed += 1
            continue
        rows += 1
        for name, value in zip(columns[1:], values):
            sums[name] += value
    return {"rows": rows, "malformed": malformed, "columns": columns, "sums": sums}


def write_csv(rows: list[list[str]]) -> str:
    """`rows` as CSV text, fields quoted where needed, each line ending in a newline."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


@lru_cache(maxsize=4)
def random_rows(count: int, seed: int) -> tuple[tuple[str, ...], ...]:
    """`count` rows of random labels and numbers, the same for the same seed (and cached)."""
    rng = random.Random(seed)
    return tuple((rng.choice(LABELS), f"{rng.uniform(0, 500):.2f}", str(rng.randint(1, 20)),
                  f"{rng.uniform(0, 0.3):.3f}") for _ in range(count))


def clean_csv(count: int = 2000, seed: int = 1) -> str:
    """A well-formed CSV of `count` rows with quoted commas and non-ASCII labels."""
    return write_csv([HEADER, *random_rows(count, seed)])


def malformed_csv(count: int = 2000, seed: int = 2) -> str:
    """A CSV where every seventh row is broken in one of five ways, with a few blank lines."""
    breakers = [lambda r: r[:-1], lambda r: [*r, "extra"], lambda r: [r[0], "n/a", *r[2:]],
                lambda r: [r[0], r[1], "", r[3]], lambda r: [r[0]]]
    rows = [list(r) if i % 7 else breakers[i // 7 % len(breakers)](list(r))
            for i, r in enumerate(random_rows(count, seed))]
    return write_csv([HEADER, *rows[:count // 2], [], *rows[count // 2:], []])


def differences(expected: dict, got) -> list[str]:
    """Up to three lines saying how `got` differs from the `expected` summary (none when equal)."""
    if not isinstance(got, dict):
        return [f"it returned {type(got).__name__}, expected a dict with keys "
                f"{', '.join(expected)}"]
    missing = [key for key in expected if key not in got]
    if missing:
        return [f"the result has no key {', '.join(map(repr, missing))}"]
    found = [f"{key} is {got[key]!r}, expected {expected[key]!r}" for key in ("rows", "malformed")
             if got[key] != expected[key]]
    if list(got["columns"]) != expected["columns"]:
        found.append(f"columns is {got['columns']!r}, expected {expected['columns']!r}")
    sums = got["sums"]
    if not isinstance(sums, dict) or set(sums) != set(expected["sums"]):
        found.append(f"sums has keys {sorted(sums) if isinstance(sums, dict) else sums!r}, "
                     f"expected {sorted(expected['sums'])!r}")
    else:
        found += [f"sums[{name!r}] is {sums[name]!r}, expected {value!r}"
                  for name, value in expected["sums"].items()
                  if not (isinstance(sums[name], (int, float))
                          and math.isclose(sums[name], value, rel_tol=1e-9, abs_tol=1e-6))]
    return found[:3]
