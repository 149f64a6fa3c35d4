"""The ARP census beside arp-scan and nmap -sn on a LAN of 200 real hosts in namespaces.

Run (as root):  .venv-test/bin/python tests/bench/bench_users.py [--repeat N] [--json FILE]

Four LANs (tests/support/test_lan.py: each host a kernel in its own namespace on one
macvlan switch): 200 hosts on a /24 and 200 spread over a /22's 1022 addresses, each clean
and with 10 % lossy hosts (they drop every second request for their address, starting with
the first) and 10 % silent ones (they never answer). On each, in the agent's namespace and
in the same run:

- our census as a short-lived process (``python -c`` calling ArpSource) at the product's
  defaults (agent/config.py ArpCensusConfig: 2 rounds, 500 requests/s, 0.5 s wait, like
  arp-scan's attempts and timeout), and a more patient one (3 rounds, 1 s wait) for
  phones that sleep;
- ``arp-scan -I lan0 --localnet`` (its defaults: 2 attempts per host, 500 ms timeout,
  256 kbit/s, the same pace as ours);
- ``nmap -sn -n <subnet>`` (ARP ping on a local Ethernet; -n: no name lookups, which
  would be traffic outside the test).

Each tool's wall time, CPU seconds and peak RSS come from the kernel (wait4's rusage of the
process). Hosts found are compared with the truth: recall, and false positives (any address
or device that is not a responsive host; nmap's report of the agent's own address is not
counted as either). Lossy hosts are reset before every run, so each tool meets the same LAN.
It prints a table and writes JSON (default bench-results/users.json); it asserts nothing:
the targets are printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from support.netns import netns_problem
from support.test_lan import AGENT_INTERFACE, KEY, Measured, TestLan, mac_bytes, measured, run_census, spread

from agent.config import ArpCensusConfig
from agent.probes.users.census import DeviceKeys

HOSTS = 200
SCENARIOS = {
    "/24 clean": ("10.203.188.0/24", 0, 0),
    "/24 10% lossy 10% silent": ("10.203.188.0/24", 20, 20),
    "/22 clean": ("10.203.184.0/22", 0, 0),
    "/22 10% lossy 10% silent": ("10.203.184.0/22", 20, 20),
}
CENSUS_DEFAULTS = "census (defaults)"
CENSUS_PATIENT = "census (3 rounds, 1 s)"
DEFAULTS = ArpCensusConfig()
REQUIRED_TOOLS = ("nft", "arp-scan", "nmap", "time")
TARGET_CPU_SECONDS = 0.3
TARGET_PEAK_RSS_BYTES = 45 * 2**20
ARP_SCAN_LINE = re.compile(r"^(\d+\.\d+\.\d+\.\d+)\t")
NMAP_LINE = re.compile(r"^Nmap scan report for (\d+\.\d+\.\d+\.\d+)$")


def cost(run: Measured) -> dict[str, Any]:
    if run.returncode not in (0, 3):
        raise RuntimeError(f"exit {run.returncode}: {run.stderr[-2000:]}")
    return {"wall_seconds": run.wall_seconds, "cpu_seconds": run.cpu_seconds,
            "user_seconds": run.user_seconds, "system_seconds": run.system_seconds,
            "peak_rss_bytes": run.peak_rss_bytes}


def score(found: set[str], truth: set[str]) -> dict[str, Any]:
    return {"found": len(found & truth), "truth": len(truth), "recall": len(found & truth) / len(truth),
            "false_positives": len(found - truth)}


def census(lan: TestLan, rounds: int, wait: float) -> dict[str, Any]:
    output, run = run_census(lan, {"interface": AGENT_INTERFACE, "rounds": rounds, "rate": DEFAULTS.rate,
                                   "wait": wait})
    if "unavailable" in output:
        raise RuntimeError(f"the census could not run: {output['unavailable']}")
    keys = DeviceKeys(random=lambda size: KEY[:size])
    truth = {keys(mac_bytes(host.mac)).hex() for host in lan.responsive}
    return {**cost(run), **score(set(output["devices"]), truth),
            "census_cpu_seconds": output["census_user_seconds"] + output["census_system_seconds"],
            "census_user_seconds": output["census_user_seconds"],
            "census_system_seconds": output["census_system_seconds"],
            "census_seconds": output["duration_seconds"], "requests": output["requests"],
            "rounds": output["rounds"]}


def by_address(lan: TestLan, run: Measured, pattern: re.Pattern[str]) -> dict[str, Any]:
    found = {match.group(1) for line in run.stdout.splitlines() if (match := pattern.match(line))}
    found.discard(lan.agent_ip)  # nmap lists the machine it runs on: neither found nor false
    return {**cost(run), **score(found, {host.ip for host in lan.responsive})}


def arp_scan(lan: TestLan) -> dict[str, Any]:
    return by_address(lan, measured(lan, ["arp-scan", "-I", AGENT_INTERFACE, "--localnet"]), ARP_SCAN_LINE)


def nmap(lan: TestLan) -> dict[str, Any]:
    return by_address(lan, measured(lan, ["nmap", "-sn", "-n", str(lan.network)]), NMAP_LINE)


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time (its other figures belong to it), and every run."""
    ordered = sorted(runs, key=lambda run: run["wall_seconds"])
    return {**ordered[(len(ordered) - 1) // 2], "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each tool per LAN (the median is shown)")
    parser.add_argument("--json", type=Path, default=Path("bench-results/users.json"))
    args = parser.parse_args()
    problem = netns_problem() or next((f"{tool} is not installed" for tool in REQUIRED_TOOLS
                                       if shutil.which(tool) is None), None)
    if problem:
        print(f"cannot run: {problem}", file=sys.stderr)
        return 2
    tools = {CENSUS_DEFAULTS: lambda lan: census(lan, DEFAULTS.rounds, DEFAULTS.wait),
             CENSUS_PATIENT: lambda lan: census(lan, 3, 1.0),
             "arp-scan (defaults)": arp_scan, "nmap -sn": nmap}
    results: dict[str, Any] = {}
    for scenario, (network, lossy, silent) in SCENARIOS.items():
        with TestLan(network, spread(network, HOSTS, lossy=lossy, silent=silent), prefix="bu") as lan:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in tools}
            for _ in range(args.repeat):
                for name, tool in tools.items():  # interleaved: a slow moment hits every tool
                    lan.reset_loss()
                    time.sleep(0.2)  # the previous tool's last frames are gone
                    runs[name].append(tool(lan))
            results[scenario] = {"network": network, "hosts": HOSTS, "lossy": lossy, "silent": silent,
                                 "responsive": len(lan.responsive), "lan_setup_seconds": lan.setup_seconds,
                                 "tools": {name: median_run(tool_runs) for name, tool_runs in runs.items()}}
    summary = print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"scenarios": results, "targets": summary}, indent=2) + "\n")
    print(f"written to {args.json}")
    return 0


def print_table(results: dict[str, Any]) -> dict[str, Any]:
    print(f"{'LAN':26} {'tool':20} {'wall s':>7} {'CPU s':>6} {'user':>5} {'sys':>5} {'peak MiB':>9} "
          f"{'found':>8} {'recall':>7} {'false+':>6} {'requests':>8} {'census user/sys s':>17}")
    summary: dict[str, Any] = {}
    for scenario, result in results.items():
        for name, row in result["tools"].items():
            own = (f"{row['census_user_seconds']:8.3f}/{row['census_system_seconds']:.3f}"
                   if "census_cpu_seconds" in row else f"{'-':>17}")
            print(f"{scenario:26} {name:20} {row['wall_seconds']:7.2f} {row['cpu_seconds']:6.2f} "
                  f"{row['user_seconds']:5.2f} {row['system_seconds']:5.2f} "
                  f"{row['peak_rss_bytes'] / 2**20:9.1f} "
                  f"{row['found']:>4}/{row['truth']:<3} {row['recall']:7.3f} {row['false_positives']:6} "
                  f"{row.get('requests', '-'):>8} {own}")
        print(f"{'':26} (LAN of {result['hosts']} hosts built in {result['lan_setup_seconds']:.2f} s)")
        ours, theirs = result["tools"][CENSUS_DEFAULTS], result["tools"]["arp-scan (defaults)"]
        summary[scenario] = {
            "recall_at_least_arp_scan": ours["recall"] >= theirs["recall"],
            "wall_at_most_arp_scan": ours["wall_seconds"] <= theirs["wall_seconds"],
            "cpu_at_most_0_3_s": ours["cpu_seconds"] <= TARGET_CPU_SECONDS,
            "census_cpu_at_most_0_3_s": ours["census_cpu_seconds"] <= TARGET_CPU_SECONDS,
            "peak_rss_at_most_45_mib": ours["peak_rss_bytes"] <= TARGET_PEAK_RSS_BYTES,
        }
    print("targets for the census at its defaults (recall >= arp-scan's, wall <= arp-scan's, CPU <= 0.3 s, "
          "peak RSS <= 45 MiB):")
    for scenario, met in summary.items():
        verdicts = ", ".join(f"{key} {'met' if value else 'MISSED'}" for key, value in met.items())
        print(f"  {scenario:26} {verdicts}")
    return summary


if __name__ == "__main__":
    sys.exit(main())
