"""What the connectivity probes cost the agent at their default intervals, beside fping.

Run (as root):  .venv-test/bin/python tests/bench/bench_connectivity.py [--quick] [--json FILE]

A school's path in four network namespaces (tests/support/school_network.py: school,
gateway, provider, internet with targets, resolvers, a web service and the collector).
In the school namespace, each for the same stretch of time:

- the agent daemon with every connectivity probe at its default interval (60 s windows,
  an echo every 0.5 s to the gateway and 5 targets, TTL-limited probes to 2 provider
  hops every 5 s, a DNS round over 4 resolvers every 10 s, 2 HTTP services every 30 s),
  plus the system probe and uploads as usual;
- the same agent with connectivity off: what the agent costs anyway;
- the anchor: fping in loop mode at the same echo rate to the same 6 destinations
  (``fping -l -p 500``), the C tool SmokePing uses.

CPU is the kernel's count for each process (utime + stime); the agent's first 15 s are
left out (start-up imports are a one-off). It prints a table and writes JSON (default
bench-results/connectivity.json); it asserts nothing: the target (under 1 % of one core)
is printed beside the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from support.netns import netns_problem
from support.school_network import (
    DNS_NAMES,
    GATEWAY_LAN_IP,
    HTTP_URL,
    RESOLVERS,
    TARGETS,
    SchoolNetwork,
    toml_value,
)

TARGET_SHARE_OF_ONE_CORE = 0.01
WARM_UP_SECONDS = 15.0
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def memory(pid: int, field: str) -> int:
    """VmHWM (peak resident) or VmRSS (resident now) of a process, bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


def agent_config(network: SchoolNetwork, connectivity: bool) -> str:
    assert network.collector is not None
    values: dict[str, Any] = {
        "enabled": connectivity,
        # The product's defaults for everything but the addresses: all local here.
        "targets": [*TARGETS, *RESOLVERS], "gateway": "auto",
        "dns_servers": ["system", *RESOLVERS], "dns_names": list(DNS_NAMES),
        "http_urls": [HTTP_URL, f"{network.collector.url}/healthz"],
    }
    lines = ["[probes.bandwidth]", "enabled = false", "", "[probes.connectivity]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def measure_agent(network: SchoolNetwork, connectivity: bool, seconds: float) -> dict[str, Any]:
    agent = network.agent
    assert agent is not None
    agent.write_config(agent_config(network, connectivity))
    # As installed by pip: modules compiled once, not in memory at every start (the test
    # environment sets PYTHONDONTWRITEBYTECODE; compiling costs a few MiB at the peak).
    agent.env.pop("PYTHONDONTWRITEBYTECODE", None)
    earlier = len(connectivity_windows(network))
    process = agent.start()
    try:
        time.sleep(WARM_UP_SECONDS)
        if process.poll() is not None:
            raise RuntimeError(f"the agent stopped: {agent.log_path.read_text()[-2000:]}")
        before, started = cpu_seconds(process.pid), time.monotonic()
        time.sleep(seconds)
        used, elapsed = cpu_seconds(process.pid) - before, time.monotonic() - started
        rss, peak = memory(process.pid, "VmRSS"), memory(process.pid, "VmHWM")
    finally:
        agent.stop()
    windows = connectivity_windows(network)[earlier:]
    if connectivity and not windows:
        raise RuntimeError("the agent recorded no connectivity window: nothing was measured")
    return {"cpu_seconds": used, "seconds": elapsed, "share_of_one_core": used / elapsed,
            "rss_bytes": rss, "peak_rss_bytes": peak, "windows": len(windows),
            "echo_probes_sent": sum(echo["sent"] for w in windows
                                    for echo in [*w["targets"], *([w["gateway"]] if w["gateway"] else [])]),
            "dns_queries": sum(d["queries"] for w in windows for d in w["dns"]),
            "http_requests": sum(h["requests"] for w in windows for h in w["http"])}


def connectivity_windows(network: SchoolNetwork) -> list[dict[str, Any]]:
    """Every connectivity window the agent recorded, delivered or still in its outbox: the
    counts say the probes ran at the rates the table is about."""
    assert network.agent is not None and network.collector is not None
    delivered = [json.loads(row[0]) if isinstance(row[0], str) else row[0] for row in
                 network.collector.query("SELECT payload FROM records WHERE kind = 'connectivity' AND ok")]
    waiting = []
    outbox = network.agent.state_dir / "outbox.sqlite"
    if outbox.exists():
        with sqlite3.connect(outbox) as db:
            for (body,) in db.execute("SELECT body FROM records WHERE kind = 'connectivity'"):
                record = json.loads(body)
                if record["ok"]:
                    waiting.append(record["payload"])
        db.close()
    return delivered + waiting


def measure_fping(network: SchoolNetwork, seconds: float) -> dict[str, Any]:
    destinations = [GATEWAY_LAN_IP, *TARGETS, *RESOLVERS]
    process = network.popen("school", "fping", "-l", "-q", "-p", "500", "-t", "2000", *destinations,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        before, started = cpu_seconds(process.pid), time.monotonic()
        time.sleep(seconds)
        used, elapsed = cpu_seconds(process.pid) - before, time.monotonic() - started
    finally:
        process.kill()
        process.wait(timeout=10)
    return {"cpu_seconds": used, "seconds": elapsed, "share_of_one_core": used / elapsed,
            "echo_destinations": len(destinations)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="150 s per run instead of 300 s")
    parser.add_argument("--json", type=Path, default=Path("bench-results/connectivity.json"))
    args = parser.parse_args()
    problem = netns_problem()
    if problem:
        print(f"cannot run: {problem}", file=sys.stderr)
        return 2
    # At least two whole 60 s windows (the first starts on the next boundary after start-up).
    seconds = 150.0 if args.quick else 300.0
    with tempfile.TemporaryDirectory() as workdir, SchoolNetwork(Path(workdir), prefix="bc") as network:
        results = {
            "agent with connectivity": measure_agent(network, True, seconds),
            "agent without connectivity": measure_agent(network, False, seconds),
            "fping -l -p 500 (anchor)": measure_fping(network, seconds),
        }
    with_probes = results["agent with connectivity"]["share_of_one_core"]
    without = results["agent without connectivity"]["share_of_one_core"]
    anchor = results["fping -l -p 500 (anchor)"]["share_of_one_core"]
    summary = {"connectivity_share_of_one_core": with_probes - without,
               "agent_share_of_one_core": with_probes, "fping_share_of_one_core": anchor,
               "target_share_of_one_core": TARGET_SHARE_OF_ONE_CORE,
               "met": with_probes < TARGET_SHARE_OF_ONE_CORE}
    print(f"{'process':32} {'seconds':>8} {'CPU s':>8} {'% of a core':>12} {'RSS/peak MiB':>13} "
          f"{'windows':>8} {'echoes':>7} {'DNS':>5} {'HTTP':>5}")
    for name, row in results.items():
        rss = (f"{row['rss_bytes'] / 2**20:6.1f}/{row['peak_rss_bytes'] / 2**20:6.1f}"
               if "peak_rss_bytes" in row else f"{'-':>13}")
        counts = " ".join(f"{row.get(key, '-'):>{width}}" for key, width in (
            ("windows", 8), ("echo_probes_sent", 7), ("dns_queries", 5), ("http_requests", 5)))
        print(f"{name:32} {row['seconds']:8.1f} {row['cpu_seconds']:8.2f} "
              f"{row['share_of_one_core'] * 100:11.3f}% {rss} {counts}")
    print(f"connectivity probes alone: {summary['connectivity_share_of_one_core'] * 100:.3f} % of one core; "
          f"the whole agent {with_probes * 100:.3f} % (target: under {TARGET_SHARE_OF_ONE_CORE * 100:.0f} %: "
          f"{'met' if summary['met'] else 'missed'}); fping {anchor * 100:.3f} %")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": results, "summary": summary}, indent=2) + "\n")
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
