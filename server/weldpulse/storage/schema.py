"""Table definitions of the two stores: metadata (projects, sites, keys) and events."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Sequence,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Timestamps are naive UTC everywhere: the engines then agree on bucket math.

metadata_db = MetaData()

projects = Table(
    "projects",
    metadata_db,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("plan", String(16), nullable=False),  # free | pro | enterprise
    Column("created_at", DateTime, nullable=False),
)

sites = Table(
    "sites",
    metadata_db,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(36), ForeignKey("projects.id"), nullable=False, index=True),
    Column("domain", String(253), nullable=False),
    Column("name", String(200), nullable=False),
    Column("site_key", String(64), nullable=False, unique=True),
    Column("is_active", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
    # IANA key (weldpulse.timezones.ZONES) of the site's local days.
    Column("timezone", String(64), nullable=False, server_default="UTC"),
)

api_keys = Table(
    "api_keys",
    metadata_db,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(36), ForeignKey("projects.id"), nullable=False, index=True),
    # SHA-256 hex of the whole key; the key itself is never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),  # shown in listings: "ak_live_AbCd"
    Column("scopes", String(200), nullable=False),  # space-separated
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime, nullable=True),
    # Updated at most once a minute per key, so auth does not write on every call.
    Column("last_used_at", DateTime, nullable=True),
    Column("expires_at", DateTime, nullable=True),  # NULL: never expires
    # A key limited to one site (dashboard share links); NULL: every site of its project.
    Column("site_id", String(36), nullable=True),
)

# Visitor ids hash (site, IP, user agent) with the salt of their UTC day; a
# salt lives 48 hours so sessions crossing midnight continue, then is deleted.
salts = Table(
    "salts",
    metadata_db,
    Column("day", Date, primary_key=True),
    Column("salt", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

# A goal is a named condition on a site's events: exactly one of event_name (a
# custom event's name) and page_path (a pathname pattern, weldpulse.stats.paths).
goals = Table(
    "goals",
    metadata_db,
    Column("id", String(36), primary_key=True),
    Column("site_id", String(36), ForeignKey("sites.id"), nullable=False, index=True),
    Column("name", String(120), nullable=False),
    Column("event_name", String(120), nullable=True),
    Column("page_path", String(2000), nullable=True),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("site_id", "name", name="uq_goals_site_name"),
)

# A saved funnel: its steps and window as the JSON of the funnel request.
funnels = Table(
    "funnels",
    metadata_db,
    Column("id", String(36), primary_key=True),
    Column("site_id", String(36), ForeignKey("sites.id"), nullable=False, index=True),
    Column("name", String(120), nullable=False),
    Column("definition", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("site_id", "name", name="uq_funnels_site_name"),
)

events_db = MetaData()

# First-event attributes an event and its session both keep (Text, "" = none).
ATTRIBUTES = ("referrer", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
              "city")  # fmt: skip
# Hands out events.seq; a database sequence, so several servers sharing one
# PostgreSQL store never hand out the same value.
EVENTS_SEQ = Sequence("events_seq", metadata=events_db)

events = Table(
    "events",
    events_db,
    Column("site_id", String(36), nullable=False),
    Column("ts", DateTime, nullable=False),
    Column("name", String(120), nullable=False),
    Column("visitor_id", BigInteger, nullable=False),
    Column("session_id", BigInteger, nullable=False),
    Column("pathname", Text, nullable=False),
    Column("referrer_source", Text, nullable=False),
    Column("country", String(2), nullable=False),
    Column("region", Text, nullable=False),
    Column("device_type", String(16), nullable=False),
    Column("browser", Text, nullable=False),
    Column("os", Text, nullable=False),
    Column("props", Text, nullable=False),  # JSON object
    # Pageviews only: the previous pageview of the same session, so time on
    # page is one filtered scan instead of a window over every pageview.
    Column("prev_pathname", Text, nullable=True),
    Column("prev_ts", DateTime, nullable=True),
    # Attributes of the query dimensions; "" when the event has none.
    *(Column(name, Text, nullable=False) for name in ("hostname", *ATTRIBUTES)),
    # Receive order, increasing across the store (EVENTS_SEQ): orders events
    # with equal timestamps, so a session's first and last event are defined.
    Column("seq", BigInteger, nullable=False),
)

# One row per session, maintained at ingestion so that queries never have to
# rebuild sessions from raw events.
sessions = Table(
    "sessions",
    events_db,
    Column("session_id", BigInteger, primary_key=True, autoincrement=False),
    Column("site_id", String(36), nullable=False),
    Column("visitor_id", BigInteger, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("ended_at", DateTime, nullable=False),
    Column("duration", Float, nullable=False),  # seconds, ended_at - started_at
    Column("pageviews", Integer, nullable=False),
    Column("events", Integer, nullable=False),  # all events, pageviews included
    Column("entry_page", Text, nullable=False),  # "" until the first pageview
    Column("exit_page", Text, nullable=False),  # pathname of the latest pageview
    Column("referrer_source", Text, nullable=False),
    Column("country", String(2), nullable=False),
    Column("region", Text, nullable=False),
    Column("device_type", String(16), nullable=False),
    Column("browser", Text, nullable=False),
    Column("os", Text, nullable=False),
    Column("last_pageview_at", DateTime, nullable=True),  # None until the first pageview
    *(Column(name, Text, nullable=False) for name in ATTRIBUTES),
    Column("channel", Text, nullable=False),  # enrich.channel at the session's start
)

# Per site, UTC day, visitor and visitor attributes: pageviews and events.
# Rows are appended per ingested batch (a visitor may have several rows a
# day); sums and count(DISTINCT visitor_id) over them are exact, with about
# one row per visitor-day instead of one per event.
visitor_days = Table(
    "visitor_days",
    events_db,
    Column("site_id", String(36), nullable=False),
    Column("day", Date, nullable=False),
    Column("visitor_id", BigInteger, nullable=False),
    Column("country", String(2), nullable=False),
    Column("region", Text, nullable=False),
    Column("device_type", String(16), nullable=False),
    Column("browser", Text, nullable=False),
    Column("os", Text, nullable=False),
    Column("pageviews", Integer, nullable=False),
    Column("events", Integer, nullable=False),
)

# Day rollups of the breakdowns that need distinct visitors per row (pages,
# referrers). Unlike visitor_days they are computed for a whole finished day
# at once (storage.rollups) and only trusted while rolled_days says so:
# ingestion deletes a (site, day) mark whenever it writes anything that day's
# rows depend on, and queries read raw rows for every day not marked.
page_days = Table(
    "page_days",
    events_db,
    Column("site_id", String(36), nullable=False),
    Column("day", Date, nullable=False),
    Column("pathname", Text, nullable=False),
    Column("visitors", Integer, nullable=False),  # distinct visitors with a pageview that day
    Column("pageviews", Integer, nullable=False),
    # Pageviews of the day followed by another of their session: seconds to it, and how many.
    Column("time_total", Float, nullable=False),
    Column("time_count", Integer, nullable=False),
    Column("entries", Integer, nullable=False),  # sessions starting that day here
    Column("bounces", Integer, nullable=False),  # of those, single-event sessions
)

source_days = Table(
    "source_days",
    events_db,
    Column("site_id", String(36), nullable=False),
    Column("day", Date, nullable=False),  # the day its sessions started
    Column("referrer_source", Text, nullable=False),
    Column("visitors", Integer, nullable=False),  # distinct visitors of those sessions
    Column("pageviews", Integer, nullable=False),
    Column("sessions", Integer, nullable=False),
    Column("bounces", Integer, nullable=False),
    Column("duration", Float, nullable=False),  # sum of the sessions' seconds
)

event_days = Table(
    "event_days",
    events_db,
    Column("site_id", String(36), nullable=False),
    Column("day", Date, nullable=False),
    Column("name", String(120), nullable=False),  # custom events only, not "pageview"
    Column("total", Integer, nullable=False),
    Column("visitors", Integer, nullable=False),  # distinct visitors that day
)

# Per site, day and breakdown (kind "total", or a key of queries.BREAKDOWNS):
# distinct visitors and pageviews per combination of the kind's dimensions,
# rolled from visitor_days; dimensions the kind does not use are "".
breakdown_days = Table(
    "breakdown_days",
    events_db,
    Column("site_id", String(36), nullable=False),
    Column("day", Date, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("country", String(2), nullable=False),
    Column("region", Text, nullable=False),
    Column("device_type", String(16), nullable=False),
    Column("browser", Text, nullable=False),
    Column("os", Text, nullable=False),
    Column("visitors", Integer, nullable=False),
    Column("pageviews", Integer, nullable=False),
)

# Per site, day and attribute kind (a key of queries.ATTR_KINDS: one dimension or a combo,
# values v0.. as stored, "" where the kind has fewer): the query engine's own figures.
# visitors, pageviews and events: of the day's events, grouped by the event's page or
# hostname or by its session's attribute (a session keeps its start's attributes for
# events on later days); sessions, bounces, duration and views: of the sessions starting
# that day. Rolled with the other day rollups (storage.rollups), read while rolled_days
# marks the day.
# Its kinds: the columns each groups by, of events for EVENT_ATTRS, else of the event's
# session (whose attributes never change after its first event, so a day's rows stay exact
# until a write unmarks the day). geo and devices are queries.BREAKDOWNS' combos.
EVENT_ATTRS = ("pathname", "hostname")
ATTR_KINDS: dict[str, tuple[str, ...]] = {
    "page": ("pathname",),
    "hostname": ("hostname",),
    "source": ("referrer_source",),
    **{name: (name,) for name in ("referrer", "channel", "country", "region", "city",
                                  "device_type", "browser", "os")},
    **{f"utm_{p}": (f"utm_{p}",) for p in ("source", "medium", "campaign", "content", "term")},
    "geo": ("country", "region"),
    "devices": ("device_type", "browser", "os"),
}  # fmt: skip
attr_days = Table(
    "attr_days",
    events_db,
    Column("site_id", String(36), nullable=False),
    Column("day", Date, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("v0", Text, nullable=False),
    Column("v1", Text, nullable=False),
    Column("v2", Text, nullable=False),
    Column("visitors", Integer, nullable=False),  # distinct visitors with an event that day
    Column("pageviews", Integer, nullable=False),
    Column("events", Integer, nullable=False),
    Column("sessions", Integer, nullable=False),
    Column("bounces", Integer, nullable=False),
    Column("duration", Float, nullable=False),  # sum of the sessions' seconds
    Column("views", Integer, nullable=False),  # sum of the sessions' pageviews
)

# Visitor ids of a rolled (site, day) that the roll saw on another (site, day):
# the few ids whose per-day distinct counts must not simply be added up.
multi_day_visitors = Table(
    "multi_day_visitors",
    events_db,
    Column("site_id", String(36), nullable=False),
    Column("day", Date, nullable=False),
    Column("visitor_id", BigInteger, nullable=False),
)

rolled_days = Table(
    "rolled_days",
    events_db,
    Column("site_id", String(36), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("rolled_at", DateTime, nullable=False),
)

# How far each ingest log (weldpulse.ingest.log) is applied: written in the
# transaction of the batch it applies, so a restart resumes exactly there.
ingest_positions = Table(
    "ingest_positions",
    events_db,
    Column("log_id", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# Per site, rolled UTC day and 15-minute slot of it (slot_at: its start, naive UTC):
# the additive figures of the slot, and of the day's visitors how many had their
# first (firsts) and their last (lasts) event of that day in the slot. Every real
# zone's offset is a whole number of slots, so local buckets are unions of slots;
# a local bucket edge b inside a UTC day splits it in a prefix, whose visitors are
# the firsts of slots before b, and a suffix, the lasts of slots from b on
# (stats/engine/local.py). Trusted only while rolled_days marks the day.
local_slots = Table(
    "local_slots",
    events_db,
    Column("site_id", String(36), nullable=False),
    Column("day", Date, nullable=False),
    Column("slot_at", DateTime, nullable=False),
    Column("firsts", Integer, nullable=False),
    Column("lasts", Integer, nullable=False),
    Column("pageviews", Integer, nullable=False),
    Column("sessions", Integer, nullable=False),  # sessions starting in the slot
    Column("bounces", Integer, nullable=False),
    Column("duration", Float, nullable=False),
    Column("views", Integer, nullable=False),  # those sessions' pageviews
)

# Per site, rolled UTC day and visitor: its first and last event that day. Queries
# count the few multi-day visitors of local buckets from them (local.py) instead
# of scanning their events; trusted only while rolled_days marks the day.
visitor_spans = Table(
    "visitor_spans",
    events_db,
    Column("site_id", String(36), nullable=False),
    Column("day", Date, nullable=False),
    Column("visitor_id", BigInteger, nullable=False),
    Column("first_ts", DateTime, nullable=False),
    Column("last_ts", DateTime, nullable=False),
)
