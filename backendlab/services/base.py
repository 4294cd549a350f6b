"""What every service shares: how it is found (real or embedded), and how its failure is reported.

Rule of the suite: an environment variable names a real service; unset (or with
BACKENDLAB_EMBEDDED=1) an embedded one is started on a free loopback port. A process that starts an
embedded service publishes its address in BACKENDLAB_SHARED_<NAME>, so the servers it starts as
child processes use the same one instead of starting their own.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from backendlab import config


class ServiceUnavailable(RuntimeError):
    """A configured service did not answer. The message says what was tried and how to fix it.

    IPython shows only the message (no traceback wall) through `_render_traceback_`.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\033[31mServiceUnavailable\033[0m: {self}"]


@dataclass
class ServiceInfo:
    """One row of the doctor's table."""

    name: str
    mode: str
    address: str
    version: str
    reachable: bool
    detail: str = ""


def forced_embedded() -> bool:
    """True when BACKENDLAB_EMBEDDED=1 asks for embedded services even where real ones answer."""
    return config.get("BACKENDLAB_EMBEDDED", "") in {"1", "true", "yes"}


class Service:
    """Finds one kind of service: real if its variable is set, embedded otherwise.

    Subclasses give the variable, the fix command, how to probe an address (returns a version
    string or raises) and how to start the embedded one (returns its address).
    """

    name: str = ""
    env_var: str = ""
    compose_service: str = ""

    def __init__(self) -> None:
        self._address: str | None = None
        self._mode: str = ""
        self._lock = threading.Lock()
        self._embedded = None
        self._owns_embedded = False

    @property
    def shared_var(self) -> str:
        return f"BACKENDLAB_SHARED_{self.env_var}"

    def configured(self) -> str | None:
        """The real service's address named in the environment, unless embedded is forced."""
        if forced_embedded():
            return None
        return config.get(self.env_var) or None

    def fix_hint(self) -> str:
        return (f"start it (`docker compose up -d {self.compose_service}` from the project root), "
                f"or unset {self.env_var} to use the embedded one")

    def address(self) -> str:
        """The address to use, starting the embedded service the first time it is needed."""
        with self._lock:
            if self._address is None:
                self._address, self._mode = self._resolve()
            return self._address

    def mode(self) -> str:
        self.address()
        return self._mode

    def _resolve(self) -> tuple[str, str]:
        shared = os.environ.get(self.shared_var)
        if shared:
            return shared, "embedded"
        real = self.configured()
        if real:
            try:
                self.probe(real)
            except Exception as exc:
                raise ServiceUnavailable(
                    f"{self.name}: {self.env_var}={real} does not answer ({_short(exc)}). "
                    f"Fix: {self.fix_hint()}."
                ) from None
            return real, "real"
        try:
            address = self.start_embedded()
        except Exception as exc:
            raise ServiceUnavailable(
                f"{self.name}: the embedded service did not start ({_short(exc)}). "
                f"Fix: reinstall with `make install`, or set {self.env_var} to a real one."
            ) from None
        os.environ[self.shared_var] = address
        self._owns_embedded = True
        return address, "embedded"

    def info(self) -> ServiceInfo:
        """Resolve, probe and describe the service; never raises (the doctor's row)."""
        try:
            address = self.address()
        except ServiceUnavailable as exc:
            mode = "real" if self.configured() else "embedded"
            return ServiceInfo(self.name, mode, self.configured() or "", "", False, str(exc))
        try:
            version = self.probe(address)
            return ServiceInfo(self.name, self._mode, address, version, True, self.describe())
        except Exception as exc:
            return ServiceInfo(self.name, self._mode, address, "", False, _short(exc))

    def describe(self) -> str:
        """A short note on what backs the service (shown in the doctor's table)."""
        return ""

    def stop(self) -> None:
        """Stop the embedded service this process started, and forget the address."""
        with self._lock:
            if self._embedded is not None:
                self._embedded.stop()
                self._embedded = None
            if self._owns_embedded:
                os.environ.pop(self.shared_var, None)
                self._owns_embedded = False
            self._address = None
            self._mode = ""

    def probe(self, address: str) -> str:
        raise NotImplementedError

    def start_embedded(self) -> str:
        raise NotImplementedError


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
