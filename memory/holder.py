"""Who holds a stream's writer lease, and whether that process is provably gone.

A writer lease (memory/lease.py) records its holder beside the token: this host's identity, the
process id and the process's start time. A later writer on the same host can then tell a holder
that crashed (`kill -9`, OOM, a power cut of a container) from one that is still running, without
waiting for the lease to expire.

"The same host" is the same machine id, hostname and PID namespace (two containers on one machine
have PID namespaces of their own, so a pid there means nothing here). A holder is provably dead when
it is on this host and either the host has booted since (another boot id), or no process has its
pid, or the process with its pid started at another time (the pid was reused). Anything else — a
holder on another host, an identity this host cannot check (no /proc) — is treated as alive.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


@cache
def host_id() -> str:
    """This host's identity: a hash of the machine id, hostname and PID namespace (16 hex digits)."""
    machine = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id")
    namespace = ""
    with contextlib.suppress(OSError):
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    raw = "\0".join((machine, socket.gethostname(), namespace))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@cache
def boot_id() -> str:
    """The kernel's id of this boot ('' where there is none to read)."""
    return _read("/proc/sys/kernel/random/boot_id")


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (field 3 on), [] when unknown or gone."""
    stat = _read(f"/proc/{pid}/stat")
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    return stat.rsplit(")", 1)[-1].split() if stat else []


def process_start(pid: int) -> str:
    """When process `pid` started, as the kernel counts it (clock ticks since boot; '' unknown or gone)."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""  # field 22 overall: starttime


def _pid_exists(pid: int) -> bool | None:
    """True/False where the kernel says so; None where it cannot tell."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return None
    return True


@dataclass(frozen=True)
class Holder:
    """A writer lease's holder: the token it holds the lease under, and the process behind it."""

    token: str
    host: str
    boot: str
    pid: int
    started: str
    hostname: str = ""

    @classmethod
    def me(cls, token: str) -> Holder:
        pid = os.getpid()
        return cls(token=token, host=host_id(), boot=boot_id(), pid=pid, started=process_start(pid),
                   hostname=socket.gethostname())

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> Holder | None:
        """The holder recorded, or None for nothing or something unreadable (treated as unknown: alive)."""
        if not raw:
            return None
        try:
            data: Any = json.loads(raw)
            return cls(token=str(data["token"]), host=str(data["host"]), boot=str(data["boot"]),
                       pid=int(data["pid"]), started=str(data["started"]), hostname=str(data.get("hostname", "")))
        except (ValueError, TypeError, KeyError):
            return None

    def describe(self) -> str:
        where = "this host" if self.host == host_id() else f"host {self.hostname or self.host!r}"
        return f"pid {self.pid} on {where}"

    def provably_dead(self) -> bool:
        """True only when this host can prove the holder's process is gone (see the module doc)."""
        if self.host != host_id():
            return False
        if self.boot and boot_id() and self.boot != boot_id():
            return True  # the host booted again since: every process of the last boot is gone
        exists = _pid_exists(self.pid)
        if exists is False:
            return True
        if exists is None or not self.started:
            return False
        fields = _stat(self.pid)
        if len(fields) <= 19:
            return False
        # A zombie (killed, not yet reaped by its parent) runs no more; a newer process reused the pid.
        return fields[0] in ("Z", "X") or fields[19] != self.started
