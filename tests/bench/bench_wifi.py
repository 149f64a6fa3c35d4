"""What reading Wi-Fi costs the agent, beside the tools it replaces and falls back to.

Run:  .venv-test/bin/python tests/bench/bench_wifi.py [--quick] [--json FILE]

There is no Wi-Fi hardware here, so each figure is measured on recorded replies:

- memory: the resident memory an agent process gains by importing its Wi-Fi stack (the
  probe, the nl80211 client, the Linux fallbacks and every parser) after ``agent.daemon``,
  beside the anchor: pyroute2's nl80211 module imported the same way (the library the
  issue names; its cost is why the agent has its own small client). Fresh processes,
  compiled bytecode, as a pip install on a Pi runs;
- decoding: CPU per scan dump of 60 access points (each with SSID, DS Parameter Set and
  BSS Load elements, as a school's corridor hears them) decoded by the agent's nl80211
  decoder, beside pyroute2 decoding the same bytes;
- one probe run through the ``iw`` fallback (``iw dev IF link``, ``station dump``, ``survey
  dump``, each a process; here a fake ``iw`` printing real captured output), beside the
  anchor: the same three processes spawned with nothing parsed.

It prints a table and writes JSON (default bench-results/wifi.json); it asserts nothing.
Targets printed beside the figures: the Wi-Fi stack within 2 MB (the agent's whole budget
is 50 MB), a scan decoded with less CPU than pyroute2 needs for it, and a probe run's
parsing under a quarter of what spawning the tools costs (the tools are the price of the
fallback; the parsing should not add much to it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from support.wifi_samples import sample  # noqa: E402

from agent.probes.wifi import nl80211  # noqa: E402

ACCESS_POINTS = 60
STACK_TARGET_BYTES = 2_000_000
PARSE_SHARE_TARGET = 0.25

STACK_IMPORTS = ("import agent.probes.wifi, agent.probes.wifi.linux, agent.probes.wifi.formats, "
                 "agent.probes.wifi.survey")
PYROUTE2_IMPORTS = "import pyroute2.netlink.nl80211"

RSS_PROBE = """
import sys
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * {page}
import agent.daemon, agent.probes.system, agent.probes.connectivity, agent.uploader, httpx
before = rss()
{imports}
print(rss() - before)
"""


def import_cost(imports: str) -> int:
    """Resident bytes ``imports`` add to an agent process (median of three fresh ones)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache  # compiled once, then read as an install would
        code = RSS_PROBE.format(page=os.sysconf("SC_PAGE_SIZE"), imports=imports)
        costs = []
        for _ in range(4):
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  env=env, cwd=ROOT, check=True)
            costs.append(int(done.stdout))
        runs = sorted(costs[1:])  # the first run compiles
        return runs[len(runs) // 2]


def scan_dump(count: int) -> bytes:
    """A GET_SCAN dump as the kernel sends it: one NEW_SCAN_RESULTS message per access
    point (linux/nl80211.h), each with its elements (IEEE 802.11 9.4.2), then NLMSG_DONE."""
    family, messages = 0x1C, []
    for index in range(count):
        ssid = f"school-{index % 4}".encode() if index % 3 else f"neighbour-{index}".encode()
        elements = (bytes([0, len(ssid)]) + ssid + bytes([3, 1, 1 + index % 11])
                    + bytes([11, 5, index % 30, 0, 100 + index, 0, 0]))
        bssid = bytes([2, 0, 0, 0, index // 256, index % 256])
        mhz = 2412 + 5 * (index % 11)
        bss = b"".join((
            nl80211.encode_attribute(nl80211.NL80211_BSS_BSSID, bssid),
            nl80211.encode_attribute(nl80211.NL80211_BSS_FREQUENCY, struct.pack("=I", mhz)),
            nl80211.encode_attribute(nl80211.NL80211_BSS_SIGNAL_MBM, struct.pack("=i", -4000 - 50 * index)),
            nl80211.encode_attribute(nl80211.NL80211_BSS_INFORMATION_ELEMENTS, elements),
        ))
        attrs = (nl80211.encode_attribute(nl80211.NL80211_ATTR_IFINDEX, struct.pack("=I", 3))
                 + nl80211.encode_attribute(nl80211.NL80211_ATTR_BSS | nl80211.NLA_F_NESTED, bss))
        messages.append(nl80211.encode_request(family, nl80211.NL80211_CMD_NEW_SCAN_RESULTS,
                                               nl80211.NLM_F_MULTI, 1, attrs))
    done = struct.pack("=IHHIIi", 20, nl80211.NLMSG_DONE, nl80211.NLM_F_MULTI, 1, 0, 0)
    return b"".join(messages) + done


def ours(data: bytes) -> int:
    entries = []
    for message in nl80211.parse_messages(data):
        if message.type == nl80211.NLMSG_DONE:
            break
        entry = nl80211.scan_entry_from_attributes(nl80211.generic(message).attributes)
        if entry is not None:
            entries.append(entry)
    return len(entries)


def theirs(data: bytes) -> int:
    from pyroute2.netlink.nl80211 import nl80211cmd

    count, offset = 0, 0
    while offset < len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if kind == nl80211.NLMSG_DONE:
            break
        message = nl80211cmd(data[offset:offset + length])
        message.decode()
        bss = message.get_attr("NL80211_ATTR_BSS")
        bss.get_attr("NL80211_BSS_INFORMATION_ELEMENTS")
        count += 1
        offset += length
    return count


def cpu_per_call(call: Callable[[], Any], repeat: int) -> float:
    call()  # warm: imports, caches
    began = time.process_time()
    for _ in range(repeat):
        call()
    return (time.process_time() - began) / repeat


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fake_iw(directory: Path) -> Path:
    """An `iw` that prints real captured output for link, station dump and survey dump."""
    (directory / "link.txt").write_text(sample("linux_iw_dev_link.txt", 0).split("\n", 1)[1])
    (directory / "station.txt").write_text(sample("linux_iw_station_dump.txt", "A"))
    (directory / "survey.txt").write_text(
        "Survey data from wlp0s20f3\n\tfrequency:\t\t\t5280 MHz [in use]\n\tnoise:\t\t\t\t-95 dBm\n")
    script = directory / "iw"
    script.write_text(f"""#!/bin/sh
case "$*" in
  *" link") exec cat {directory}/link.txt ;;
  *"station dump") exec cat {directory}/station.txt ;;
  *"survey dump") exec cat {directory}/survey.txt ;;
esac
echo "command failed: No such device (-19)" >&2; exit 237
""")
    script.chmod(0o755)
    return script


def probe_run_costs(repeat: int) -> dict[str, float]:
    from agent.probes.wifi.linux import IwSource

    with tempfile.TemporaryDirectory() as tmp:
        iw = fake_iw(Path(tmp))
        source = IwSource("wlp0s20f3", str(iw))

        def spawn_only() -> None:
            for args in (("link",), ("station", "dump"), ("survey", "dump")):
                subprocess.run([str(iw), "dev", "wlp0s20f3", *args], capture_output=True, check=True,
                               env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "")})

        results = {}
        for name, call in (("probe", source.link), ("spawn", spawn_only)):
            call()
            own, kids = time.process_time(), children_cpu()
            for _ in range(repeat):
                call()
            results[f"{name}_own_seconds"] = (time.process_time() - own) / repeat
            results[f"{name}_children_seconds"] = (children_cpu() - kids) / repeat
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--json", type=Path, default=Path("bench-results/wifi.json"))
    args = parser.parse_args()
    repeat = 20 if args.quick else 200
    if shutil.which("sh") is None:
        print("bench_wifi: needs /bin/sh for the fake iw", file=sys.stderr)
        return 1

    stack = import_cost(STACK_IMPORTS)
    anchor = import_cost(PYROUTE2_IMPORTS)
    dump = scan_dump(ACCESS_POINTS)
    assert ours(dump) == theirs(dump) == ACCESS_POINTS
    decode_ours = cpu_per_call(lambda: ours(dump), repeat)
    decode_theirs = cpu_per_call(lambda: theirs(dump), max(repeat // 4, 5))
    run = probe_run_costs(max(repeat // 4, 10))
    parse_seconds = max(run["probe_own_seconds"] - run["spawn_own_seconds"], 0.0)
    spawn_seconds = run["spawn_own_seconds"] + run["spawn_children_seconds"]

    run_seconds = run["probe_own_seconds"] + run["probe_children_seconds"]
    rows = [
        ("memory: Wi-Fi stack imported", f"{stack / 1e6:.2f} MB", f"pyroute2 nl80211: {anchor / 1e6:.2f} MB",
         f"<= {STACK_TARGET_BYTES / 1e6:.0f} MB"),
        (f"CPU: decode a scan of {ACCESS_POINTS} APs", f"{decode_ours * 1e3:.3f} ms",
         f"pyroute2: {decode_theirs * 1e3:.3f} ms", "below pyroute2's"),
        ("CPU: one iw-fallback probe run", f"{run_seconds * 1e3:.2f} ms",
         f"3 iw processes alone: {spawn_seconds * 1e3:.2f} ms",
         f"parsing {parse_seconds * 1e3:.2f} ms, < {PARSE_SHARE_TARGET:.0%} of spawning"),
    ]
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    header = ("figure", "schoolnet", "anchor", "target")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))
    document = {"access_points": ACCESS_POINTS, "stack_import_bytes": stack, "pyroute2_import_bytes": anchor,
                "decode_scan_seconds": decode_ours, "pyroute2_decode_scan_seconds": decode_theirs,
                "iw_probe_run": run, "parse_seconds": parse_seconds, "spawn_seconds": spawn_seconds}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
