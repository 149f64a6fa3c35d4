"""Windows' ``netsh wlan`` text: ``show interfaces`` (the link) and ``show networks
mode=bssid`` (a scan), in the languages Windows prints them in, and its 24H2 refusal
to answer without the Location permission.

netsh localises every label and has renamed some between builds (``BSSID`` became
``AP BSSID``; ``Band`` arrived with Windows 11), so labels are mapped to fields through
one table per language, matched case-insensitively with whitespace collapsed, and the
value is whatever follows the first " : ". The laptop's own MAC ("Physical address",
"Physische Adresse", ...) is recognised only to be dropped: it is never read into a field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.probes.wifi import radio
from agent.probes.wifi.reading import LinkReading, NotParsable, ScanEntry
from agent.probes.wifi.source import Unavailable

SOURCE_INTERFACES = "netsh-interfaces"
SOURCE_NETWORKS = "netsh-networks"

# What the coordinator has to switch on. Since Windows 11 24H2 the WLAN service hands SSIDs,
# BSSIDs and signal only to programs allowed to use the location (nearby access points
# locate a machine). An agent running as a service needs the device-wide setting.
LOCATION_PERMISSION_MESSAGE = (
    "Windows withholds Wi-Fi readings until Location is allowed: in Settings > Privacy & security "
    "> Location switch on 'Location services' and 'Let desktop apps access your location' "
    "(Windows 11 24H2 and later)")

# The fields read; every other recognised label (the laptop's own MAC among them) maps to DROP.
NAME, GUID, STATE, SSID, BSSID, BAND, CHANNEL, RADIO_TYPE = (
    "name", "guid", "state", "ssid", "bssid", "band", "channel", "radio_type")
RX_RATE, TX_RATE, SIGNAL, STATIONS, UTILIZATION = (
    "rx_rate", "tx_rate", "signal", "stations", "utilization")
DROP = "drop"


class LocationPermissionDenied(Unavailable):
    """Windows 11 24H2+ refused Wi-Fi information for want of the Location permission."""


@dataclass(frozen=True)
class NetshLanguage:
    """The labels and state words of one display language of netsh."""

    code: str
    labels: dict[str, str]
    connected: frozenset[str]
    not_connected: frozenset[str]


# Labels are written lower case with single spaces; rate labels without their "(Mbps)"
# unit, which is read separately. Where each language comes from:
ENGLISH = NetshLanguage(
    # Windows 11 en-US (fixture windows_netsh_show_interfaces.txt sample A) and older
    # Windows 10 builds without "Band" and with "BSSID" (wifi-heatmapper,
    # data/localization/en-mac-14.json); the networks labels from
    # windows_netsh_show_networks_bssid.txt and public Windows 11 captures with Bss Load.
    "en",
    {"name": NAME, "description": DROP, "guid": GUID, "physical address": DROP,
     "interface type": DROP, "state": STATE, "ssid": SSID, "bssid": BSSID, "ap bssid": BSSID,
     "band": BAND, "channel": CHANNEL, "network type": DROP, "radio type": RADIO_TYPE,
     "authentication": DROP, "cipher": DROP, "encryption": DROP, "connection mode": DROP,
     "receive rate": RX_RATE, "transmit rate": TX_RATE, "signal": SIGNAL, "profile": DROP,
     "connected stations": STATIONS, "channel utilization": UTILIZATION},
    frozenset({"connected"}),
    frozenset({"disconnected", "disconnecting", "associating", "authenticating", "discovering",
               "not ready", "ad hoc network formed"}),
)
GERMAN = NetshLanguage(
    # de-DE capture (fixture sample B, from wifi-heatmapper data/localization/de-DE.json).
    # "Band" is accepted too in case a later build stops saying "Bereich". Unverified: the
    # state "Getrennt" (disconnected) and the Bss Load labels, which no German capture shows.
    "de",
    {"name": NAME, "beschreibung": DROP, "guid": GUID, "physische adresse": DROP,
     "benutzeroberflächentyp": DROP, "schnittstellentyp": DROP, "status": STATE, "ssid": SSID,
     "bssid": BSSID, "ap bssid": BSSID, "bereich": BAND, "band": BAND, "kanal": CHANNEL,
     "netzwerktyp": DROP, "funktyp": RADIO_TYPE, "authentifizierung": DROP,
     "verschlüsselungsverfahren": DROP, "verschlüsselung": DROP, "verbindungsmodus": DROP,
     "empfangsrate": RX_RATE, "übertragungsrate": TX_RATE, "signal": SIGNAL, "profil": DROP},
    frozenset({"verbunden"}),
    frozenset({"getrennt", "nicht verbunden"}),
)
DUTCH = NetshLanguage(
    # UNVERIFIED: no verbatim nl-NL capture exists yet; the labels are the ones the fixture
    # README lists from Dutch material, the state words are the Dutch Windows terms for
    # connected / disconnected. Replace with a capture from a school PC when one exists
    # (`chcp 65001 & netsh wlan show interfaces > x.txt`).
    "nl",
    {"naam": NAME, "beschrijving": DROP, "guid": GUID, "fysiek adres": DROP, "status": STATE,
     "ssid": SSID, "bssid": BSSID, "ap bssid": BSSID, "band": BAND, "kanaal": CHANNEL,
     "netwerktype": DROP, "radiotype": RADIO_TYPE, "verificatie": DROP, "codering": DROP,
     "ontvangstsnelheid": RX_RATE, "verzendsnelheid": TX_RATE, "signaal": SIGNAL,
     "profiel": DROP},
    frozenset({"verbonden"}),
    frozenset({"niet verbonden", "verbinding verbroken"}),
)
ITALIAN = NetshLanguage(
    # it-IT Windows 10 capture (wifi-heatmapper data/localization/it.json: "Tipo frequenza
    # radio") and Windows 11 `show networks mode=bssid` with Bss Load (wifi-heatmapper issue
    # #44: "Tipo di radio", "Banda", "Stazioni connesse", "Utilizzo canale"). Posted
    # captures, not Microsoft's resource strings. Unverified: "disconnessa".
    "it",
    {"nome": NAME, "descrizione": DROP, "guid": GUID, "indirizzo fisico": DROP,
     "tipo di interfaccia": DROP, "stato": STATE, "ssid": SSID, "bssid": BSSID,
     "ap bssid": BSSID, "banda": BAND, "canale": CHANNEL, "tipo di rete": DROP,
     "tipo frequenza radio": RADIO_TYPE, "tipo di radio": RADIO_TYPE, "autenticazione": DROP,
     "crittografia": DROP, "modalità connessione": DROP, "velocità ricezione": RX_RATE,
     "velocità trasmissione": TX_RATE, "segnale": SIGNAL, "profilo": DROP,
     "stazioni connesse": STATIONS, "utilizzo canale": UTILIZATION},
    frozenset({"connessa", "connesso"}),
    frozenset({"disconnessa", "disconnesso"}),
)
FRENCH = NetshLanguage(
    # fr-FR Windows 11 capture (wifi-heatmapper data/localization/fr-FR.json), whose BSSID
    # label really is "Point d'accès d'identificateur SSID (Service Set Identifier)".
    # Posted capture, not Microsoft's resource strings. Unverified: "déconnecté".
    "fr",
    {"nom": NAME, "description": DROP, "guid": GUID, "adresse physique": DROP,
     "type d'interface": DROP, "état": STATE, "ssid": SSID, "bssid": BSSID, "ap bssid": BSSID,
     "point d'accès d'identificateur ssid (service set identifier)": BSSID, "bande": BAND,
     "canal": CHANNEL, "type de réseau": DROP, "type de radio": RADIO_TYPE,
     "authentification": DROP, "chiffrement": DROP, "mode de connexion": DROP,
     "réception": RX_RATE, "transmission": TX_RATE, "signal": SIGNAL, "profil": DROP},
    frozenset({"connecté"}),
    frozenset({"déconnecté"}),
)
SPANISH = NetshLanguage(
    # es-ES Windows 11 capture (wifi-heatmapper data/localization/es.json; its "Dirección"
    # is the physical-address line as posted). Posted capture, not Microsoft's resource
    # strings. Unverified: "desconectado".
    "es",
    {"nombre": NAME, "descripción": DROP, "guid": GUID, "dirección": DROP,
     "dirección física": DROP, "tipo de interfaz": DROP, "estado": STATE, "ssid": SSID,
     "bssid": BSSID, "ap bssid": BSSID, "tipo de red": DROP, "tipo de radio": RADIO_TYPE,
     "autenticación": DROP, "cifrado": DROP, "modo de conexión": DROP, "banda": BAND,
     "canal": CHANNEL, "velocidad de recepción": RX_RATE, "velocidad de transmisión": TX_RATE,
     "señal": SIGNAL, "perfil": DROP},
    frozenset({"conectado"}),
    frozenset({"desconectado"}),
)
LANGUAGES = (ENGLISH, GERMAN, DUTCH, ITALIAN, FRENCH, SPANISH)
LANGUAGE_CODES = ", ".join(language.code for language in LANGUAGES)

# The Settings page netsh names in its refusal: an identifier, so it is not translated.
_LOCATION_URI = "ms-settings:privacy-location"
# English wording, as captured on Windows 11 24H2: "Network shell commands need location
# permission to access WLAN information. Turn on Location services on the Location page
# in Privacy & security settings." Other languages are recognised by the URI above.
_LOCATION_PHRASES = ("need location permission to access wlan information",)

_SSID_HEADER = re.compile(r"^ssid\s+\d+$")
_BSSID_HEADER = re.compile(r"^bssid\s+\d+$")
_UNIT_SUFFIX = re.compile(r"^(?P<base>.*?)\s*\((?P<unit>[^()]*)\)$")
_PERCENT = re.compile(r"^(\d+(?:[.,]\d+)?)\s*%$")
_NUMBER = re.compile(r"^\d+(?:[.,]\d+)?$")
_LEADING_INT = re.compile(r"^(\d+)")
_PERCENT_ANYWHERE = re.compile(r"\((\d+(?:[.,]\d+)?)\s*%\)")


def location_permission_error(text: str) -> str | None:
    """The coordinator's instruction when ``text`` is netsh's (or the WLAN API's)
    refusal for want of the Location permission; None for anything else."""
    folded = text.casefold()
    if _LOCATION_URI in folded or any(phrase in folded for phrase in _LOCATION_PHRASES):
        return LOCATION_PERMISSION_MESSAGE
    return None


def is_netsh_interfaces(text: str) -> bool:
    """``netsh wlan show interfaces`` output in a known language, or netsh's 24H2 location
    refusal (so that an import of it is told what to switch on)."""
    if location_permission_error(text) is not None:
        return True
    # `show networks` output has no GUID line; pasted below (or above) this command's, both
    # are read (formats.read_capture).
    known = [line.field for line in _label_lines(text) if line.field is not None]
    return GUID in known and len(known) >= 4


def parse_netsh_interfaces(text: str) -> list[LinkReading]:
    """One reading per interface block of ``netsh wlan show interfaces``."""
    return [_reading(block) for block in _interface_blocks(text)]


def netsh_interface_guids(text: str) -> list[str | None]:
    """The GUID of each interface block, in the order parse_netsh_interfaces returns them
    (config.interface may name an interface by GUID; LinkReading has no field for it)."""
    return [_clean_guid(block.values.get(GUID)) for block in _interface_blocks(text)]


def is_netsh_networks(text: str) -> bool:
    """``netsh wlan show networks mode=bssid`` output: "SSID n" with "BSSID n" blocks."""
    labels = [line.key for line in _label_lines(text)]
    return (any(_SSID_HEADER.match(label) for label in labels)
            and any(_BSSID_HEADER.match(label) for label in labels))


def parse_netsh_networks(text: str, interface: str | None = None) -> list[ScanEntry]:
    """One entry per "BSSID n" of ``netsh wlan show networks mode=bssid``. With
    ``interface``, only the networks listed under that "Interface name : …" (netsh lists
    every wireless interface's networks when a machine has several)."""
    _refuse_location(text)
    lines = _label_lines(text)
    top = min((line.indent for line in lines), default=0)
    entries: list[ScanEntry] = []
    current: dict[str, str] | None = None
    ssid = ""
    listed_under: str | None = None
    saw_structure = saw_ssid = False

    def flush() -> None:
        if current is not None and (interface is None or listed_under is None
                                    or listed_under.casefold() == interface.casefold()):
            entries.append(_scan_entry(current))

    for line in lines:
        if _SSID_HEADER.match(line.key):
            flush()
            current, ssid, saw_structure, saw_ssid = None, line.value, True, True
        elif _BSSID_HEADER.match(line.key):
            flush()
            current = {BSSID: line.value, SSID: ssid}
        elif line.indent == top and line.value:
            # "Interface name : Wi-Fi", whatever its language: the one label line at the
            # top level besides "SSID n".
            flush()
            current, ssid, listed_under, saw_structure = None, "", line.value, True
        elif line.field in (NAME, GUID):
            # `show interfaces` output pasted into the same file: no longer this network's.
            flush()
            current = None
        elif current is not None and line.field in _SCAN_FIELDS:
            current.setdefault(line.field, line.value)
    flush()
    # Without "SSID n" blocks only "Interface name : …" lines may be there (nothing in range);
    # labels of `show interfaces` mean the wrong command's output.
    if not saw_structure or (not saw_ssid and any(line.field not in (None, DROP) for line in lines)):
        raise NotParsable("not `netsh wlan show networks mode=bssid` output: no 'SSID n : …' "
                          "or 'Interface name : …' lines")
    return entries


_SCAN_FIELDS = frozenset({SIGNAL, RADIO_TYPE, BAND, CHANNEL, STATIONS, UTILIZATION})


@dataclass(frozen=True)
class _Line:
    key: str  # the label as looked up: lower case, single spaces, without a "(Mbps)" unit
    value: str
    indent: int
    field: str | None  # None: a label no table knows
    unit: str | None  # the unit a rate label carries, e.g. "Mbps", "MBit/s"


@dataclass
class _Block:
    values: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)


def _refuse_location(text: str) -> None:
    message = location_permission_error(text)
    if message is not None:
        raise NotParsable(f"netsh refused to answer: {message}")


def _interface_blocks(text: str) -> list[_Block]:
    _refuse_location(text)
    blocks: list[_Block] = []
    unknown: list[str] = []
    in_networks = False
    for line in _label_lines(text):
        # `show networks` output pasted into the same file: its "SSID n" blocks up to the next
        # interface's Name line say nothing about the interfaces (their Signal is another's).
        if _SSID_HEADER.match(line.key):
            in_networks = True
        if in_networks and line.field != NAME:
            continue
        in_networks = False
        if line.field is None:
            unknown.append(line.key)
            continue
        # A block starts at its Name line (or at a second GUID, should a paste lack Name).
        if not blocks or line.field == NAME or (line.field == GUID and GUID in blocks[-1].values):
            blocks.append(_Block())
        block = blocks[-1]
        block.keys.append(line.key)
        if line.field != DROP:  # the laptop's own MAC and the like are never kept
            block.values.setdefault(line.field, line.value)
            if line.unit:
                block.units.setdefault(line.field, line.unit)
    blocks = [block for block in blocks if GUID in block.values or STATE in block.values]
    if blocks:
        return blocks
    if unknown:
        shown = ", ".join(f"'{key}'" for key in unknown[:4])
        raise NotParsable(f"not `netsh wlan show interfaces` output in a language known here "
                          f"({LANGUAGE_CODES}): no known label among {shown}")
    raise NotParsable("not `netsh wlan show interfaces` output: no 'Name : …', 'GUID : …' or "
                      "'State : …' lines")


def _reading(block: _Block) -> LinkReading:
    values = block.values
    name = values.get(NAME) or None
    if not _is_connected(values, _language_of(block.keys)):
        return LinkReading(source=SOURCE_INTERFACES, interface=name, connected=False)
    percent = _percent(values.get(SIGNAL))
    channel = _int(values.get(CHANNEL))
    band, frequency_mhz = _band_and_frequency(channel, values.get(BAND))
    return LinkReading(
        source=SOURCE_INTERFACES,
        interface=name,
        connected=True,
        ssid=values.get(SSID) or None,
        bssid=radio.normalise_bssid(values.get(BSSID)),
        signal_dbm=radio.dbm_from_windows_percent(percent) if percent is not None else None,
        signal_percent=percent,
        signal_converted=percent is not None,
        frequency_hertz=frequency_mhz * radio.MHZ if frequency_mhz is not None else None,
        channel=channel,
        band=band,
        rx_bitrate_bits_per_second=_rate(values.get(RX_RATE), block.units.get(RX_RATE)),
        tx_bitrate_bits_per_second=_rate(values.get(TX_RATE), block.units.get(TX_RATE)),
        phy_mode=values.get(RADIO_TYPE) or None,
    )


def _scan_entry(values: dict[str, str]) -> ScanEntry:
    percent = _percent(values.get(SIGNAL))
    channel = _int(values.get(CHANNEL))
    band, frequency_mhz = _band_and_frequency(channel, values.get(BAND))
    return ScanEntry(
        source=SOURCE_NETWORKS,
        bssid=radio.normalise_bssid(values.get(BSSID)),
        ssid=values.get(SSID, ""),
        signal_dbm=radio.dbm_from_windows_percent(percent) if percent is not None else None,
        signal_percent=percent,
        signal_converted=percent is not None,
        frequency_hertz=frequency_mhz * radio.MHZ if frequency_mhz is not None else None,
        channel=channel,
        band=band,
        station_count=_leading_int(values.get(STATIONS)),
        channel_utilization_ratio=_utilization(values.get(UTILIZATION)),
    )


def _label_lines(text: str) -> list[_Line]:
    """Every "label : value" line. A pasted prompt line, a BOM, CRLF, tabs and trailing
    blanks fall away; lines without a label (the "There is 1 interface" header) are prose."""
    found: list[_Line] = []
    for raw in text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.replace("\t", "    ").rstrip()
        stripped = line.lstrip()
        if " : " in stripped:
            label, _, value = stripped.partition(" : ")
        elif stripped.endswith(" :"):
            label, value = stripped[:-2], ""  # "SSID 3 :" - a hidden network
        else:
            # Bss Load's "Connected Stations:        1" has no space before its colon; only
            # a number after the colon makes such a line a label (not a prompt like C:\>).
            label, colon, value = stripped.partition(":")
            if not colon or not _LEADING_NUMBER.match(value.strip()):
                continue
        key, unit = _normalise(label), None
        mapped = _ALL_LABELS.get(key)
        if mapped is None:
            match = _UNIT_SUFFIX.match(key)
            if match is not None and _ALL_LABELS.get(match["base"]) in (RX_RATE, TX_RATE):
                key, unit = match["base"], match["unit"]
                mapped = _ALL_LABELS[key]
        found.append(_Line(key, value.strip(), len(line) - len(stripped), mapped, unit))
    return found


def _normalise(label: str) -> str:
    label = label.replace("\u2019", "'").replace("\u00a0", " ")
    return " ".join(label.split()).casefold()


# Every language's labels in one lookup: a build that leaves a label untranslated (a new
# "Band" line) still reads. No two tables give one label different fields.
_ALL_LABELS: dict[str, str] = {key: value for language in LANGUAGES
                               for key, value in language.labels.items()}
_EVERY_CONNECTED = frozenset().union(*(language.connected for language in LANGUAGES))
_EVERY_NOT_CONNECTED = frozenset().union(*(language.not_connected for language in LANGUAGES))
_LEADING_NUMBER = re.compile(r"^\d")


def _language_of(keys: list[str]) -> NetshLanguage:
    return max(LANGUAGES, key=lambda language: sum(key in language.labels for key in keys))


def _is_connected(values: dict[str, str], language: NetshLanguage) -> bool:
    state = _normalise(values.get(STATE, ""))
    if state in language.connected or state in _EVERY_CONNECTED:
        return True
    if state in language.not_connected or state in _EVERY_NOT_CONNECTED:
        return False
    # A state word no table knows: netsh prints the signal line only while associated.
    return SIGNAL in values


def _percent(value: str | None) -> float | None:
    match = _PERCENT.match(value or "")
    return float(match.group(1).replace(",", ".")) if match else None


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _leading_int(value: str | None) -> int | None:
    match = _LEADING_INT.match(value or "")
    return int(match.group(1)) if match else None


def _utilization(value: str | None) -> float | None:
    """Bss Load's "150 (58 %)": the access point's own x/255 first, then the rounded
    percentage; the raw value keeps the precision ies.parse_elements gives too."""
    raw = _leading_int(value)
    if raw is not None and raw <= 255:
        return raw / 255
    match = _PERCENT_ANYWHERE.search(value or "")
    return float(match.group(1).replace(",", ".")) / 100 if match else None


def _band_and_frequency(channel: int | None, band_text: str | None) -> tuple[str | None, int | None]:
    """Band and centre frequency in MHz. Builds without a "Band" line predate Windows'
    6 GHz support, so there the channel number alone is unambiguous."""
    band = radio.parse_band(band_text.replace(",", ".")) if band_text else None
    if channel is None:
        return band, None
    frequency = radio.frequency_of(channel, band)
    if band is None and frequency is not None:
        band = radio.band_of(frequency)
    return band, frequency


def _rate(value: str | None, unit: str | None) -> float | None:
    if not value or not _NUMBER.match(value):
        return None
    # French builds write "Mbits/s"; netsh's rates are always megabits.
    unit = (unit or "Mbps").casefold().replace("mbits/s", "mbit/s")
    try:
        return radio.bits_per_second(float(value.replace(",", ".")), unit)
    except ValueError:
        return None


def _clean_guid(value: str | None) -> str | None:
    return value.strip("{} ").casefold() if value else None
