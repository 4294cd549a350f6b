"""The servers' one way to declare options: a dataclass whose fields are the flags and defaults.

    @dataclass(frozen=True)
    class Options:
        points: int = option(10, "requests allowed per duration", parse=whole_number(1))

`add_flags(parser, Options)` gives `--points` (`serve NAME --help` shows its default) and
`from_options(Options)` builds it from the options the server was started with, so a default is
written once. The validators below give every bad value one line naming what was expected:
`argument --points: expected a whole number of at least 1, got 'ten'`.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable

from backendlab import servers

_FLAG = "backendlab.flag"


def option(default=dataclasses.MISSING, help: str = "", *, parse: Callable | None = None,
           choices=None):
    """A dataclass field that is also a command-line flag; no default means the flag is required.
    A bool is a switch with its `--no-` form (`--seed`, `--no-seed`)."""
    flag = {"help": help, "type": parse, "choices": choices}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata={_FLAG: flag})
    return dataclasses.field(default=default, metadata={_FLAG: flag})


def add_flags(parser: argparse.ArgumentParser, options_class, only: tuple[str, ...] = ()) -> None:
    """A `--name` flag for each field of `options_class` (those in `only`, when given)."""
    for field in dataclasses.fields(options_class):
        if only and field.name not in only:
            continue
        flag = field.metadata.get(_FLAG, {})
        name, default = "--" + field.name.replace("_", "-"), field.default
        if isinstance(default, bool):  # --seed and --no-seed: `start_server` can say either
            parser.add_argument(name, action=argparse.BooleanOptionalAction, default=default,
                                help=flag.get("help"))
            continue
        checks = {"type": flag.get("type"), "choices": flag.get("choices")}
        if default is dataclasses.MISSING:
            parser.add_argument(name, required=True, help=flag.get("help"), **checks)
        else:
            shown = f" (default: {default})" if default not in (None, "") else ""
            parser.add_argument(name, default=default, help=flag.get("help", "") + shown,
                                **checks)


def from_options(options_class, opts: dict | None = None):
    """An `options_class` from `opts` (default: the running server's options); fields not in
    `opts` keep their defaults."""
    opts = servers.options() if opts is None else opts
    names = {field.name for field in dataclasses.fields(options_class)}
    return options_class(**{key: value for key, value in opts.items() if key in names})


def _refuse(expected: str, text: str):
    return argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")


def _bounded(convert: Callable[[str], float], expected: str,
             accept: Callable[[float], bool]) -> Callable[[str], float]:
    """An argparse type: `convert(text)` when it converts and `accept`s the value, else one line
    saying what was `expected`."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise _refuse(expected, text) from None
        if not accept(value):
            raise _refuse(expected, text)
        return value
    return parse


def whole_number(minimum: int = 0) -> Callable[[str], int]:
    """An argparse type: an integer of at least `minimum`."""
    return _bounded(int, f"a whole number of at least {minimum}", lambda value: value >= minimum)


def number(minimum: float = 0, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a number of at least `minimum` (or, with `above`, more than it); NaN
    is neither."""
    if above:
        return _bounded(float, f"a number above {minimum:g}", lambda value: value > minimum)
    return _bounded(float, f"a number of at least {minimum:g}", lambda value: value >= minimum)


def host_port(text: str) -> str:
    """An argparse type: 'HOST:PORT' with a port in 1..65535."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _refuse("HOST:PORT", text)
    return text


def checked(parse: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse type that checks the text with `parse` (whose ValueError says what is wrong)
    and keeps the text: options travel to the workers as JSON, and they parse it again."""
    def check(text: str) -> str:
        try:
            parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    return check
