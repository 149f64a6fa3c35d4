"""A small LAN in two network namespaces for the listening census sources' tests.

::

    agent namespace ──veth── lan namespace ── macvlan (bridge) ── device namespace 1
    (the source runs here)   (the switch)      ...                 device namespace N

Code runs "inside" a namespace in a thread that entered it with setns(2): the thread's
sockets, ``socket.if_nameindex()`` and ``/proc/thread-self/net/...`` are the namespace's,
while the test keeps its own process (and the DeviceKeys it made). Python 3.11 has no
``os.setns``, so it is libc's. Namespaces are deleted by name afterwards.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import subprocess
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from support.netns import InNamespaces, NetnsError

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_counter = itertools.count()


def _ip(*argv: str) -> None:
    result = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(argv)} failed: {result.stderr.strip()}")


def in_namespace(namespace: str, function: Callable[[], T], timeout: float = 30.0) -> T:
    """``function()`` in a thread inside ``namespace``; its result, or its exception raised here."""
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {namespace} failed")
            finally:
                os.close(fd)
            outcome["result"] = function()
        except BaseException as error:  # handed to the caller
            outcome["error"] = error

    thread = threading.Thread(target=body, name=f"in-{namespace}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"code inside {namespace} did not finish within {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    result: T = outcome["result"]
    return result


class CensusLan(InNamespaces):
    """Namespaces "agent" and "lan" joined by a veth pair; ``add_device`` puts a device
    (a macvlan with a chosen MAC) on the lan side."""

    def __init__(self, prefix: str = "cz") -> None:
        base = f"{prefix}{os.getpid()}-{next(_counter)}"
        self.namespaces = {"agent": f"{base}a", "lan": f"{base}l"}
        self.agent_interface, self.lan_interface = f"{base}av", f"{base}lv"
        if len(self.agent_interface) > 15:
            raise NetnsError(f"prefix {prefix!r} makes interface names longer than 15 characters")
        self._children: list[subprocess.Popen[Any]] = []
        self._created: list[str] = []
        self._devices = 0

    def __enter__(self) -> CensusLan:
        try:
            for namespace in self.namespaces.values():
                _ip("netns", "add", namespace)
                self._created.append(namespace)
            _ip("link", "add", self.agent_interface, "netns", self.namespaces["agent"], "type", "veth",
                "peer", "name", self.lan_interface, "netns", self.namespaces["lan"])
            for side, interface in (("agent", self.agent_interface), ("lan", self.lan_interface)):
                _ip("-n", self.namespaces[side], "link", "set", "lo", "up")
                _ip("-n", self.namespaces[side], "link", "set", interface, "up")
        except BaseException:
            self.close()
            raise
        return self

    def agent_address(self, *cidrs: str) -> None:
        for cidr in cidrs:
            extra = ["nodad"] if ":" in cidr else []  # usable at once, no DAD wait
            _ip("-n", self.namespaces["agent"], "addr", "add", cidr, "dev", self.agent_interface, *extra)

    def add_device(self, address: str, *cidrs: str) -> str:
        """A device with hardware address ``address`` and IP addresses ``cidrs``, in a
        namespace of its own (a host of its own: one namespace for several would answer
        and route for all of them through whichever interface comes first); its namespace."""
        self._devices += 1
        namespace = f"{self.namespaces['lan']}{self._devices}"
        _ip("netns", "add", namespace)
        self._created.append(namespace)
        lan = self.namespaces["lan"]
        _ip("-n", lan, "link", "add", "eth0", "link", self.lan_interface, "address", address,
            "type", "macvlan", "mode", "bridge")
        _ip("-n", lan, "link", "set", "eth0", "netns", namespace)
        for cidr in cidrs:
            extra = ["nodad"] if ":" in cidr else []
            _ip("-n", namespace, "addr", "add", cidr, "dev", "eth0", *extra)
        _ip("-n", namespace, "link", "set", "eth0", "up")
        return namespace

    def close(self) -> None:
        self._stop_children()
        for namespace in self._created:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30, check=False)
        self._created.clear()
