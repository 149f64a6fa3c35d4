"""Reader of NetworkManager's ``nmcli dev wifi list``: the access points around, and from
the one marked IN-USE, the link.

Three tabular shapes occur in the wild (see the fixture): a header with a BSSID column
(NetworkManager 1.2x), rows pasted without their header, and older NetworkManager with no
BSSID column at all. The agent itself runs terse mode with a fixed field list
(``TERSE_FIELDS``), where ":" separates the fields and "\\:" / "\\\\" escape them
(nmcli(1), "-e, --escape"). Columns are found by where the header puts them, measured in
screen cells as nmcli pads them (a wide character takes two), never by splitting on spaces:
SSIDs contain spaces ("Personal Wifi Zone").

SIGNAL is NetworkManager's percentage (computed from dBm), converted back with
``radio.dbm_from_networkmanager_percent``. RATE is the access point's maximum rate, not the
link's bitrate, so it goes nowhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from agent.probes.wifi import radio
from agent.probes.wifi.ies import decode_ssid
from agent.probes.wifi.reading import LinkReading, NotParsable, ScanEntry

# The agent's own invocation: `nmcli -t -e yes -f <these> dev wifi list ...`.
TERSE_FIELDS = ("IN-USE", "BSSID", "SSID", "CHAN", "FREQ", "RATE", "SIGNAL", "SECURITY")

_MAC = r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}"
_HEADER_TOKEN = re.compile(r"^(?:\*|[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*)$")
# nmcli's default columns when a paste lost its header: IN-USE BSSID SSID MODE CHAN RATE
# SIGNAL BARS SECURITY. The BSSID and the mode/channel/rate run after the SSID anchor the row.
_HEADERLESS_ROW = re.compile(
    rf"^(?P<in_use>\*?)\s+(?P<bssid>{_MAC})\s+(?P<ssid>.*?)\s+(?P<mode>Infra|Ad-Hoc|Mesh|N/A)\s+"
    r"(?P<chan>\d+)\s+(?P<rate>\d+(?:\.\d+)?\s+\S+/s)\s+(?P<signal>\d+)\s+(?P<bars>\S+)"
    r"(?:\s+(?P<security>.*?))?\s*$")
# A shell prompt with the command a teacher pasted along: "[franco@pc ~]$ nmcli dev wifi".
_PROMPT = re.compile(r"^\s*(?:\[[^\]]*\]\S*|\S+)?\s*[$#%>»](?:\s|$)")


class NmcliEntries(list[ScanEntry]):
    """The entries of one ``nmcli dev wifi list``, and whether that output had an IN-USE
    column (older builds and custom field lists have none; then it cannot say which
    network the machine is on)."""

    def __init__(self, entries: Iterable[ScanEntry], shows_in_use: bool) -> None:
        super().__init__(entries)
        self.shows_in_use = shows_in_use


def _cell_width(char: str) -> int:
    """Screen cells of one character, as nmcli counts them when padding (GLib's
    g_unichar_iswide / g_unichar_iszerowidth)."""
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _slice(line: str, starts: Sequence[int]) -> list[str]:
    """The parts of ``line`` under columns beginning at ``starts`` (screen cells)."""
    values = [""] * len(starts)
    column = 0
    cell = 0
    for char in line:
        while column + 1 < len(starts) and cell >= starts[column + 1]:
            column += 1
        values[column] += char
        cell += _cell_width(char)
    return [value.strip() for value in values]


def _header(line: str) -> list[tuple[str, int]] | None:
    tokens = [(match.group(), match.start()) for match in re.finditer(r"\S+", line)]
    names = {name for name, _ in tokens}
    if (len(tokens) >= 3 and all(_HEADER_TOKEN.match(name) for name in names) and "SSID" in names
            and names & {"BSSID", "CHAN", "SIGNAL"}):
        return tokens
    return None


def _terse_fields(line: str) -> list[str]:
    """One terse line split on the ":" that are not escaped, escapes undone."""
    fields = [""]
    escaped = False
    for char in line:
        if escaped:
            fields[-1] += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append("")
        else:
            fields[-1] += char
    if len(fields) == len(TERSE_FIELDS) + 5 and all(re.fullmatch(r"[0-9A-Fa-f]{2}", f) for f in fields[1:7]):
        # `-e no`: the BSSID's own colons were not escaped.
        fields[1:7] = [":".join(fields[1:7])]
    return fields


def _terse_row(line: str) -> dict[str, str] | None:
    fields = _terse_fields(line)
    if len(fields) != len(TERSE_FIELDS):
        return None
    row = dict(zip(TERSE_FIELDS, fields, strict=True))
    if row["IN-USE"].strip() not in ("", "*") or not row["CHAN"].isdigit() or not row["SIGNAL"].isdigit():
        return None
    return row


def is_nmcli_wifi_list(text: str) -> bool:
    for line in text.lstrip("\ufeff").splitlines():
        if _header(line) or _HEADERLESS_ROW.match(line) or _terse_row(line):
            return True
    return False


def parse_nmcli_wifi_list(text: str) -> NmcliEntries:
    """``nmcli dev wifi list`` (tabular, with or without its header, with or without BSSID)
    or its terse form with ``TERSE_FIELDS``; one entry per access point (source "nmcli")."""
    lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    for index, line in enumerate(lines):
        header = _header(line)
        if header is not None:
            return _tabular(header, lines[index + 1:])
    terse = [_terse_row(line) for line in lines]
    if any(terse):
        rows = [row for row in terse if row is not None]
        return NmcliEntries((_entry(row) for row in rows), shows_in_use=True)
    headerless = [match.groupdict() for line in lines if (match := _HEADERLESS_ROW.match(line))]
    if headerless:
        rows = [{"IN-USE": row["in_use"], "BSSID": row["bssid"], "SSID": row["ssid"],
                 "CHAN": row["chan"], "SIGNAL": row["signal"]} for row in headerless]
        return NmcliEntries((_entry(row) for row in rows), shows_in_use=True)
    raise NotParsable("not `nmcli dev wifi list` output: no header with SSID and SIGNAL/CHAN, "
                      "no rows of BSSID, SSID, mode, channel, rate and signal, and no terse "
                      f"lines of {','.join(TERSE_FIELDS)} (run it with LC_ALL=C for English "
                      "column names)")


def _tabular(header: list[tuple[str, int]], lines: list[str]) -> NmcliEntries:
    names = ["IN-USE" if name == "*" else name for name, _ in header]
    starts = [0, *(start for _, start in header[1:])]
    entries = []
    for line in lines:
        if line.lstrip().startswith("#"):
            continue
        row = dict(zip(names, _slice(line, starts), strict=True))
        problem = _row_problem(row)
        if problem is None:
            entries.append(_entry(row))
        elif _PROMPT.match(line):
            continue  # the prompt after the output, pasted along with it
        else:
            raise NotParsable(f"an nmcli row does not fit the header's columns ({problem}): {line.strip()!r}")
    return NmcliEntries(entries, shows_in_use="IN-USE" in names or "ACTIVE" in names)


def _row_problem(row: dict[str, str]) -> str | None:
    for name in ("CHAN", "SIGNAL"):
        if name in row and not row[name].isdigit():
            return f"{name} is {row[name]!r}, not a number"
    if "BSSID" in row and row["BSSID"] and not re.fullmatch(_MAC, row["BSSID"]):
        return f"BSSID is {row['BSSID']!r}"
    return None


def _ssid(row: dict[str, str]) -> str | None:
    hexadecimal = row.get("SSID-HEX", "")
    if re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", hexadecimal):
        return decode_ssid(bytes.fromhex(hexadecimal))  # the exact bytes, when listed
    if "SSID" not in row:
        return None
    ssid = row["SSID"]
    # Tabular nmcli prints a hidden network's empty name as "--"; terse mode leaves it empty.
    return "" if ssid == "--" else ssid


def _entry(row: dict[str, str]) -> ScanEntry:
    values: dict[str, object] = {}
    signal = row.get("SIGNAL", "")
    if signal.isdigit():
        percent = float(signal)
        values.update(signal_percent=percent, signal_dbm=radio.dbm_from_networkmanager_percent(percent),
                      signal_converted=True)
    frequency = re.match(r"\s*(\d+(?:\.\d+)?)", row.get("FREQ", ""))
    channel = int(row["CHAN"]) if row.get("CHAN", "").isdigit() else None
    mhz: float | None = float(frequency.group(1)) if frequency else None
    if mhz is None and channel is not None:
        # Without FREQ (the default columns) a channel number is taken as 2.4 or 5 GHz,
        # radio.frequency_of's convention: 6 GHz channel numbers overlap both bands.
        mhz = radio.frequency_of(channel)
    if mhz is not None:
        values.update(frequency_hertz=round(mhz * radio.MHZ), band=radio.band_of(mhz),
                      channel=channel if channel is not None else radio.channel_of(mhz))
    else:
        values["channel"] = channel
    associated = row.get("IN-USE", "").strip() == "*" or row.get("ACTIVE", "").strip().lower() == "yes"
    return ScanEntry(source="nmcli", bssid=radio.normalise_bssid(row.get("BSSID")), ssid=_ssid(row),
                     associated=associated, **values)  # type: ignore[arg-type]


def nmcli_link(entries: Sequence[ScanEntry]) -> LinkReading:
    """The access point the machine is associated with (IN-USE "*") as its link (source
    "nmcli"); connected=False when none is. NotParsable when the list had no IN-USE column,
    so it cannot say. The values are the access point's as NetworkManager last scanned it."""
    if isinstance(entries, NmcliEntries) and not entries.shows_in_use:
        raise NotParsable("this nmcli list has no IN-USE column, so it cannot say which "
                          "network the machine is connected to")
    current = next((entry for entry in entries if entry.associated), None)
    if current is None:
        return LinkReading(source="nmcli", connected=False)
    return LinkReading(source="nmcli", ssid=current.ssid, bssid=current.bssid,
                       signal_dbm=current.signal_dbm, signal_percent=current.signal_percent,
                       signal_converted=current.signal_converted, frequency_hertz=current.frequency_hertz,
                       channel=current.channel, band=current.band)
