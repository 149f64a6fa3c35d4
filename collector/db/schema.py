"""Tables of the store. Times are Unix seconds (floats): dialect-neutral and cheap.

Migrations in ``collector/migrations`` create exactly these; change both together.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# BIGINT on PostgreSQL, but INTEGER on SQLite where only "INTEGER PRIMARY KEY" is a rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")

boards = Table(
    "boards", metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(63), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    # The rule set verdicts follow, and the board's capacity profiles (a BoardPolicy
    # document, collector/policy.py); null = the defaults. From migration 0005.
    Column("rule_set", String(16)),
    Column("policy", JSON),
    # Who in the board contacts a provider about an incident (migration 0007 on): an
    # Escalation document (collector/incidents/contacts.py); null = each school itself.
    Column("escalation", JSON),
    # When the board agreed that the cooperative's analysts may see its schools one by one
    # (migration 0008 on); null = they see its schools only inside aggregates of >= 5 schools.
    Column("shared_at", Float),
)

schools = Table(
    "schools", metadata,
    Column("id", Integer, primary_key=True),
    Column("board_id", ForeignKey("boards.id"), nullable=False),
    Column("slug", String(63), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    # What the board's spreadsheet says of the school (migration 0005 on).
    Column("external_id", String(64)),
    Column("pupils", Integer),
    Column("address", String(300)),
    Column("postcode", String(16)),
    Column("city", String(100)),
    Column("region", String(100)),
    Column("latitude", Float),
    Column("longitude", Float),
    # The school day: local "HH:MM" and ISO weekday numbers "1,2,3,4,5"; null = the
    # defaults (08:30-15:30, Monday to Friday) in `timezone` (null = SCHOOLNET_TIMEZONE).
    Column("timezone", String(64)),
    Column("hours_start", String(5)),
    Column("hours_end", String(5)),
    Column("school_days", String(16)),
    # Pupils in video lessons at once, for the capacity verdict; null = not known.
    Column("video_participants", Integer),
    # The school's own contact for incidents, when the board escalates per school (0007 on).
    Column("contact_name", String(200)),
    Column("contact_email", String(320)),
    Column("contact_phone", String(64)),
    UniqueConstraint("board_id", "slug"),
)

agents = Table(
    "agents", metadata,
    Column("id", Integer, primary_key=True),
    Column("school_id", ForeignKey("schools.id"), nullable=False),
    Column("slug", String(63), nullable=False),
    Column("name", String(200), nullable=False),
    Column("credential_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("last_report_at", Float),
    Column("version", String(64)),
    Column("outbox_records", BigInteger),
    Column("outbox_bytes", BigInteger),
    Column("oldest_record_age_seconds", Float),
    UniqueConstraint("school_id", "slug"),
)

enrolment_codes = Table(
    "enrolment_codes", metadata,
    Column("id", Integer, primary_key=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("school_id", ForeignKey("schools.id"), nullable=False),
    Column("uses_left", Integer, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
)

admin_tokens = Table(
    "admin_tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    # What the token may do: "admin" (the admin API, and /metrics) or "metrics" (/metrics
    # only, for Prometheus). Tokens from before scopes existed were admin tokens.
    Column("scope", String(16), nullable=False, server_default="admin"),
)

records = Table(
    "records", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("agent_id", ForeignKey("agents.id"), nullable=False),
    Column("stream_id", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error", Text),
    Column("measured_at", Float, nullable=False),
    Column("boot_id", String(64), nullable=False),
    Column("since_boot_seconds", Float, nullable=False),
    Column("clock_synchronized", Boolean),
    Column("received_at", Float, nullable=False),
    Column("payload", JSON, nullable=False),
    UniqueConstraint("agent_id", "stream_id", "seq", name="uq_records_agent_stream_seq"),
    Index("ix_records_agent_kind_time", "agent_id", "kind", "measured_at"),
)

# Rejected records keep their reason, never their content: it may hold a MAC address.
rejected_records = Table(
    "rejected_records", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("agent_id", ForeignKey("agents.id"), nullable=False),
    Column("stream_id", String(32)),
    Column("seq", BigInteger),
    Column("code", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("received_at", Float, nullable=False),
    UniqueConstraint("agent_id", "stream_id", "seq", name="uq_rejected_agent_stream_seq"),
)

given_up_ranges = Table(
    "given_up_ranges", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("agent_id", ForeignKey("agents.id"), nullable=False),
    Column("stream_id", String(32), nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("reason", String(16), nullable=False),
    Column("reported_at", Float, nullable=False),
    UniqueConstraint("agent_id", "stream_id", "first_seq", "last_seq", "reason",
                     name="uq_given_up_range"),
)

# Per stream: every seq up to here is stored, duplicate, rejected or given up.
streams = Table(
    "streams", metadata,
    Column("agent_id", ForeignKey("agents.id"), primary_key=True),
    Column("stream_id", String(32), primary_key=True),
    Column("accounted_through", BigInteger, nullable=False),
)

# Per agent and kind, kept at ingest so /metrics never scans `records`: the newest
# successful payload (what the gauges show), the newest run of any outcome, and counts.
latest = Table(
    "latest", metadata,
    Column("agent_id", ForeignKey("agents.id"), primary_key=True),
    Column("kind", String(64), primary_key=True),
    Column("measured_at", Float),
    Column("payload", JSON),
    Column("last_run_at", Float, nullable=False),
    Column("last_run_ok", Boolean, nullable=False),
    Column("last_error", Text),
    Column("runs_total", BigInteger, nullable=False),
    Column("failures_total", BigInteger, nullable=False),
)

# Partial agent configuration held centrally: per school (agent_id NULL) or per agent.
agent_settings = Table(
    "agent_settings", metadata,
    Column("id", Integer, primary_key=True),
    Column("school_id", ForeignKey("schools.id"), nullable=False),
    Column("agent_id", ForeignKey("agents.id")),
    Column("document", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("school_id", "agent_id", name="uq_agent_settings_scope"),
)

# The school's turn for a bandwidth test: one row per school, taken over by an atomic
# upsert once the holder's lease has ended (see collector/leases.py). `lease_id` is a
# random token the holder ends its turn with; it grants nothing, so it is stored as is.
bandwidth_leases = Table(
    "bandwidth_leases", metadata,
    Column("school_id", ForeignKey("schools.id"), primary_key=True),
    Column("agent_id", ForeignKey("agents.id"), nullable=False),
    Column("lease_id", String(64), nullable=False, unique=True),
    Column("granted_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

# Per agent, kept at ingest with the records (accepted ones only, never a duplicate):
# test traffic and test outcomes since the agent enrolled, the counters on /metrics.
bandwidth_totals = Table(
    "bandwidth_totals", metadata,
    Column("agent_id", ForeignKey("agents.id"), primary_key=True),
    Column("download_bytes_total", BigInteger, nullable=False),
    Column("upload_bytes_total", BigInteger, nullable=False),
    Column("tests_valid_total", BigInteger, nullable=False),
    Column("tests_invalid_total", BigInteger, nullable=False),
    Column("tests_failed_total", BigInteger, nullable=False),
    Column("tests_skipped_total", BigInteger, nullable=False),
)

# Per agent and outage kind, kept at ingest from the `outage` records (accepted ones only,
# never a duplicate): outages and their seconds since the agent enrolled.
connectivity_outage_totals = Table(
    "connectivity_outage_totals", metadata,
    Column("agent_id", ForeignKey("agents.id"), primary_key=True),
    Column("outage_kind", String(16), primary_key=True),
    Column("outages_total", BigInteger, nullable=False),
    Column("outage_seconds_total", Float, nullable=False),
)

# Per agent, kept at ingest: the start of its earliest successful connectivity window,
# where the time it observed begins (availability needs it at every scrape, and finding
# it in `records` would read every window the agent ever sent).
connectivity_first_windows = Table(
    "connectivity_first_windows", metadata,
    Column("agent_id", ForeignKey("agents.id"), primary_key=True),
    Column("first_window_at", Float, nullable=False),
)

# The outages that ended recently (their clock is the end), for availability at scrape
# time. Partial: only outage records are in it, so the other kinds' inserts do not pay.
Index("ix_records_outage_end", records.c.measured_at,
      sqlite_where=records.c.kind == "outage", postgresql_where=records.c.kind == "outage")

# A school's rooms, created on first use: by the first accepted record naming one (a
# `wifi` or `wifi_scan` record with `room`, every `survey`). `named_at` is the agent clock
# of the record whose `room_name` the room bears (null while it bears its id alone): a
# newer name wins, an older record delivered late renames nothing.
rooms = Table(
    "rooms", metadata,
    Column("id", Integer, primary_key=True),
    Column("school_id", ForeignKey("schools.id"), nullable=False),
    Column("slug", String(63), nullable=False),
    Column("name", String(200), nullable=False),
    Column("named_at", Float),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("school_id", "slug"),
)

# One row per graded reading of a room: each accepted successful `wifi` record of an agent
# in it (source "agent") and each accepted successful `survey` (source "survey"). A null
# signal is a reading without a connection (grade "none"). The history behind `rooms`.
room_observations = Table(
    "room_observations", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("room_id", ForeignKey("rooms.id"), nullable=False),
    Column("agent_id", ForeignKey("agents.id"), nullable=False),
    Column("measured_at", Float, nullable=False),
    Column("source", String(16), nullable=False),
    Column("signal_dbm", Float),
    Index("ix_room_observations_room_time", "room_id", "measured_at"),
)

# Per room and source, kept at ingest with the observations (accepted records only, never
# a duplicate) so /metrics never reads `room_observations`: the newest observation (by
# agent clock; one delivered late replaces nothing newer) and how many there have been.
room_latest = Table(
    "room_latest", metadata,
    Column("room_id", ForeignKey("rooms.id"), primary_key=True),
    Column("source", String(16), primary_key=True),
    Column("measured_at", Float, nullable=False),
    Column("signal_dbm", Float),
    Column("agent_id", ForeignKey("agents.id"), nullable=False),
    Column("observations_total", BigInteger, nullable=False),
)

# --- contracts, calendar, verdicts (issue 7) -------------------------------------------------
# A school's internet lines: a main line and perhaps a backup (4G). `networks` is a JSON
# list of CIDR prefixes that identify the line: its public addresses and the provider's
# access routers, against which results are attributed (collector/attribution.py).
connections = Table(
    "connections", metadata,
    Column("id", Integer, primary_key=True),
    Column("school_id", ForeignKey("schools.id"), nullable=False),
    Column("slug", String(63), nullable=False),
    Column("provider", String(200), nullable=False),
    Column("provider_id", String(63), nullable=False),
    Column("technology", String(16), nullable=False),
    Column("role", String(16), nullable=False),
    Column("networks", JSON, nullable=False),
    Column("support_contact", String(300)),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("school_id", "slug"),
)

# The terms of a connection from a date on: a new row when the contract changes (an
# upgrade), so every result is judged by the terms in force when it was measured. Speeds
# in bytes per second; dates are the school's local ISO dates, `ends_on` inclusive.
contracts = Table(
    "contracts", metadata,
    Column("id", Integer, primary_key=True),
    Column("connection_id", ForeignKey("connections.id"), nullable=False),
    Column("starts_on", String(10), nullable=False),
    Column("ends_on", String(10)),
    Column("download_advertised", Float, nullable=False),
    Column("upload_advertised", Float, nullable=False),
    Column("download_minimum", Float),
    Column("upload_minimum", Float),
    Column("download_normal", Float),
    Column("upload_normal", Float),
    Column("download_maximum", Float),
    Column("upload_maximum", Float),
    Column("monthly_cost", Float),
    Column("currency", String(3)),
    Column("sla_response_seconds", Float),
    Column("sla_restore_seconds", Float),
    # Which hours the SLA times count (migration 0007 on): "24x7" (every hour; null means
    # this too) or "business" (Monday to Friday 08:00-18:00 local, public holidays off).
    Column("sla_clock", String(16)),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("connection_id", "starts_on"),
)

# Days without school: for one school, a board, a region (schools.region) or everyone
# ("all"). `calendar` names the scope: "school:<pk>", "board:<pk>", "region:<name>", "all".
# Dates are local ISO dates, both inclusive.
holidays = Table(
    "holidays", metadata,
    Column("id", Integer, primary_key=True),
    Column("calendar", String(200), nullable=False),
    Column("starts_on", String(10), nullable=False),
    Column("ends_on", String(10), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    # What the days are (migration 0007 on): "holiday" (no school), "public" (a public
    # holiday: no school, and no business hours for an SLA clock) or "exams" (school as
    # usual, but an outage is urgent).
    Column("kind", String(16), nullable=False, server_default="holiday"),
    UniqueConstraint("calendar", "starts_on", "ends_on", "name"),
)

# Every bandwidth result the verdicts read: the agents' (one row per accepted `bandwidth`
# record, written at ingest) and those imported from a board's archive (`source` =
# "import", `import_key` the hash of what the row says, so importing a file twice adds
# nothing). `connection_id` is the line it was attributed to and `attribution` how.
bandwidth_results = Table(
    "bandwidth_results", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("school_id", ForeignKey("schools.id"), nullable=False),
    Column("agent_id", ForeignKey("agents.id")),
    Column("record_id", BigInteger, unique=True),
    Column("import_key", String(64), unique=True),
    Column("source", String(16), nullable=False),
    Column("connection_id", ForeignKey("connections.id")),
    Column("attribution", String(64), nullable=False),
    Column("measured_at", Float, nullable=False),
    Column("download_bytes_per_second", Float),
    Column("upload_bytes_per_second", Float),
    Column("latency_seconds", Float),
    Column("valid", Boolean, nullable=False),
    Column("invalid_reasons", JSON, nullable=False),
    Column("backend", String(32), nullable=False),
    Column("server", String(500), nullable=False),
    Column("concurrent_devices", Integer),
    Index("ix_bandwidth_results_school_time", "school_id", "measured_at"),
)

# Kept after the raw records are gone (retention): per school and local day, what a
# report over that day needs. `scope` is "school", "connection/<slug>" or "agent/<slug>";
# `data` is a document per kind (see collector/retention.py).
daily_aggregates = Table(
    "daily_aggregates", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("school_id", ForeignKey("schools.id"), nullable=False),
    Column("scope", String(80), nullable=False),
    Column("day", String(10), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("data", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("school_id", "scope", "day", "kind"),
)


# --- incidents (issue 9) ----------------------------------------------------------------------
# A sustained, corroborated problem and what people did about it. `key` is the detector's
# identity of the problem ("bandwidth:<school pk>:<line>:<direction>", "provider:<id>:<kind>"):
# at most one incident per key is active (not closed) at a time. A provider-wide incident has
# no school; the schools' own incidents link to it through `parent_id`.
incidents = Table(
    "incidents", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("board_id", ForeignKey("boards.id")),
    Column("school_id", ForeignKey("schools.id")),
    Column("connection_id", ForeignKey("connections.id")),
    Column("agent_id", ForeignKey("agents.id")),
    Column("room_id", ForeignKey("rooms.id")),
    Column("parent_id", ForeignKey("incidents.id")),
    Column("provider_id", String(63)),
    Column("provider", String(200)),
    Column("responsible", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("detected_at", Float, nullable=False),
    Column("last_evidence_at", Float, nullable=False),
    Column("acknowledged_at", Float),
    Column("escalated_at", Float),
    Column("restored_at", Float),
    Column("closed_at", Float),
    Column("resolution", String(16)),
    Column("resolution_note", Text),
    Column("ticket", String(100)),
    Column("impact", String(16), nullable=False),
    Column("urgency", String(16), nullable=False),
    Column("assessment", JSON, nullable=False),
    Column("sla_restore_seconds", Float),
    Column("sla_clock", String(16)),
    Column("sla_deadline_at", Float),
    Column("findings", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_incidents_school_state", "school_id", "state"),
    Index("ix_incidents_parent", "parent_id"),
)
# One active incident per problem: two detector runs at once (two replicas) cannot open it twice.
Index("uq_incidents_active_key", incidents.c.key, unique=True,
      sqlite_where=incidents.c.closed_at.is_(None), postgresql_where=incidents.c.closed_at.is_(None))

# Everything that happened to an incident, in order: who did what, when, and why.
incident_events = Table(
    "incident_events", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", ForeignKey("incidents.id"), nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_state", String(16)),
    Column("to_state", String(16)),
    Column("note", Text),
    Column("data", JSON),
    Index("ix_incident_events_incident", "incident_id", "at"),
)

# A notification to send for an event (webhook or e-mail), written in the transaction of
# the event so none is lost, and sent afterwards with retries (collector/incidents/notify.py).
incident_notifications = Table(
    "incident_notifications", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", ForeignKey("incidents.id"), nullable=False),
    Column("event_id", ForeignKey("incident_events.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("target", String(500), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("sent_at", Float),
    Index("ix_incident_notifications_due", "status", "next_attempt_at"),
)

# A link to one incident's evidence pack for someone without a token (the provider's
# helpdesk): the secret is in the URL, only its hash is stored; it expires and can be revoked.
incident_shares = Table(
    "incident_shares", metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", ForeignKey("incidents.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float),
)


# --- accounts (issue 10) ----------------------------------------------------------------------
# People who sign in to the collector's pages. `role` is one of collector/accounts/roles.py:
# "admin" (the whole collector), "board_admin" and "board_viewer" (their board: `board_id`),
# "analyst" (a cooperative's analyst: every board, other boards' schools only in aggregates;
# `board_id` an optional home board seen in full). `username` is stored lowercased.
# `password_hash` is an argon2id hash (null for an account that signs in by OpenID Connect
# only). Failed sign-ins are counted in `login_failures`, not here.
users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("email", String(320)),
    Column("role", String(16), nullable=False),
    Column("board_id", ForeignKey("boards.id")),
    Column("password_hash", String(200)),
    Column("oidc_issuer", String(500)),
    Column("oidc_subject", String(255)),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("disabled_at", Float),
    Column("last_login_at", Float),
    UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_users_oidc_identity"),
)

# A signed-in browser: the session secret is in an HttpOnly cookie, only its hash is stored.
# A session ends at `expires_at` (absolute), after `idle` without use (see sessions.py), when
# its user signs out, or when the account is disabled or its password changes (`revoked_at`).
user_sessions = Table(
    "user_sessions", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", ForeignKey("users.id"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float),
    Index("ix_user_sessions_user", "user_id"),
)

# Refused sign-ins, per username as typed (lowercased, whether or not such an account exists)
# and client address: collector/accounts/throttle.py. `key_hash` is the SHA-256 of the pair
# (or of the username alone for the row that refuses the username to every client),
# `username_hash` that of the username: no name or address is stored in the clear. A row
# ages out 15 minutes after its last failure; a successful sign-in deletes its pair's row.
login_failures = Table(
    "login_failures", metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("username_hash", String(64), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("first_at", Float, nullable=False),
    Column("last_at", Float, nullable=False),
    Column("blocked_until", Float),
    Index("ix_login_failures_username", "username_hash", "last_at"),
    Index("ix_login_failures_last_at", "last_at"),
)

# The remote_write buffer (collector/remote_write/, migration 0009): one row per stored
# record not yet accepted by the receiver, written in the record's own transaction when
# SCHOOLNET_REMOTE_WRITE_URL is set. A sender claims rows until `claimed_until` (null: free;
# a claim past its time is free again: its sender died) and deletes them once sent. In the
# database, so the buffer survives an outage of the receiver, restarts and replicas.
remote_write_queue = Table(
    "remote_write_queue", metadata,
    Column("record_id", BigId, ForeignKey("records.id", ondelete="CASCADE"), primary_key=True,
           autoincrement=False),
    Column("claimed_until", Float),
)

# A job that one replica at a time does (the remote_write state snapshot): its holder
# renews the row before `expires_at`; once a holder is gone, the next one to ask after that
# takes it (an upsert, like bandwidth_leases).
singleton_leases = Table(
    "singleton_leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
)
