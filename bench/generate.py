"""A deterministic, realistic synthetic event stream for the benchmarks (fixed seed, numpy)."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from weldpulse.domain import Event

DAYS = 90
END = datetime(2026, 11, 1)  # exclusive; fixed so that every run sees the same data
SITE_SHARES = (0.80, 0.12, 0.08)
CUSTOM_SHARE = 0.05
CUSTOM_NAMES = ("signup", "download", "outbound_click", "purchase", "newsletter", "play_video")

# Referrer sources by rank; the long tail is padded with plausible sites.
SOURCES = [
    "Direct / None", "Google", "Bing", "DuckDuckGo", "Twitter", "Facebook", "Reddit",
    "Hacker News", "GitHub", "LinkedIn", "YouTube", "Yahoo!", "Ecosia", "Brave",
    "Stack Overflow", "Instagram", "Medium", "dev.to", "Lobsters", "Product Hunt",
] + [f"blog{i:02d}.example" for i in range(30)]  # fmt: skip

COUNTRIES = [
    "US", "IN", "DE", "GB", "FR", "BR", "CA", "JP", "NL", "ES", "IT", "PL", "RU", "AU", "SE", "CN",
    "KR", "MX", "TR", "ID", "CH", "BE", "AT", "UA", "CZ", "PT", "DK", "NO", "FI", "IE", "AR", "CO",
    "ZA", "NG", "EG", "PK", "BD", "VN", "TH", "PH", "MY", "SG", "IL", "RO", "HU", "GR", "BG", "RS",
    "HR", "SK", "SI", "LT", "LV", "EE", "NZ", "CL", "PE", "VE", "MA", "KE", "GH", "TW", "HK", "SA",
    "AE", "IR", "IQ", "KZ", "BY", "GE", "AM", "AZ", "UZ", "DZ", "TN", "LK", "NP", "MM", "KH", "EC",
    "BO", "PY", "UY", "CR", "PA", "DO", "GT", "HN", "SV", "NI", "CU", "JM", "TT", "IS", "LU", "MT",
    "CY",
]  # fmt: skip
REGIONS_PER_COUNTRY = 5

# (device type, browser, OS) and their share of real web traffic, roughly.
USER_AGENTS = [
    (("mobile", "Chrome", "Android"), 25.0), (("desktop", "Chrome", "Windows"), 22.0),
    (("mobile", "Safari", "iOS"), 18.0), (("desktop", "Chrome", "macOS"), 8.0),
    (("desktop", "Safari", "macOS"), 5.0), (("desktop", "Edge", "Windows"), 5.0),
    (("desktop", "Firefox", "Windows"), 3.0), (("mobile", "Samsung Internet", "Android"), 3.0),
    (("tablet", "Safari", "iOS"), 3.0), (("desktop", "Chrome", "Linux"), 1.5),
    (("tablet", "Chrome", "Android"), 1.5), (("desktop", "Firefox", "Linux"), 1.0),
    (("desktop", "Firefox", "macOS"), 1.0), (("desktop", "Opera", "Windows"), 1.0),
    (("mobile", "Firefox", "Android"), 0.5), (("desktop", "Edge", "macOS"), 0.5),
]  # fmt: skip

# Landing-URL utm parameters of the sessions that have them (UTM_SHARE of all), by rank:
# (utm_source, utm_medium, utm_campaign); media chosen so every channel gets traffic.
UTM_SHARE = 0.2
CAMPAIGNS = ["black_friday", "spring_sale", "launch_week", "newsletter_2026_10", "webinar"] + [
    f"campaign_{i:02d}" for i in range(15)
]
UTM_MEDIA = [
    ("google", "cpc"), ("newsletter", "email"), ("twitter", "social"), ("facebook", "paid_social"),
    ("partner", "affiliate"), ("adnet", "display"), ("bing", "ppc"), ("reddit", "cpm"),
]  # fmt: skip
# The `plan` prop every custom event carries (its visitor's plan), by share.
PLANS = [("free", 60.0), ("pro", 25.0), ("team", 10.0), ("enterprise", 5.0)]

PATHS = ["/", "/pricing", "/docs", "/blog", "/about", "/signup", "/login", "/contact"] + [
    f"/{section}/{i}" for section in ("blog", "docs", "changelog", "help") for i in range(498)
]  # 2,000 paths


def _zipf(n: int, s: float = 1.1) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** s
    return weights / weights.sum()


def _day_weights() -> np.ndarray:
    """Weekly seasonality (weekends at 60%) and 30% growth over the 90 days."""
    first = END - timedelta(days=DAYS)
    weekday = np.array([(first + timedelta(days=d)).weekday() for d in range(DAYS)])
    weights = np.where(weekday >= 5, 0.6, 1.0) * (1 + 0.3 * np.arange(DAYS) / DAYS)
    return weights / weights.sum()


def _hour_weights() -> np.ndarray:
    """Daily seasonality: a trough at 04:00 UTC, a peak around 15:00."""
    hours = np.arange(24)
    weights = 1.1 + np.sin((hours - 9) / 24 * 2 * np.pi)
    return weights / weights.sum()


@dataclass(frozen=True)
class Stream:
    """The events as columns, sorted by time; `batches` turns them into ingest.Events."""

    ts: np.ndarray  # seconds since END - DAYS
    site: np.ndarray
    visitor: np.ndarray
    name: np.ndarray
    path: np.ndarray
    source: np.ndarray
    place: np.ndarray
    agent: np.ndarray
    campaign: np.ndarray  # index into CAMPAIGNS, -1 without utm parameters
    medium: np.ndarray  # index into UTM_MEDIA
    plan: np.ndarray  # index into PLANS

    def __len__(self) -> int:
        return len(self.ts)

    def batches(
        self, site_ids: list[str], size: int, start: int, stop: int
    ) -> Iterator[list[Event]]:
        """ingest.Events of rows [start, stop) in lists of `size`."""
        origin = END - timedelta(days=DAYS)
        names = ["pageview", *CUSTOM_NAMES]
        places = [
            (country, f"{country}-{r + 1:02d}")
            for country in COUNTRIES
            for r in range(REGIONS_PER_COUNTRY)
        ]
        agents = [agent for agent, _ in USER_AGENTS]
        columns = ("ts", "site", "visitor", "name", "path", "source", "place", "agent")
        for lo in range(start, stop, size):
            cols = [getattr(self, c)[lo : min(lo + size, stop)].tolist() for c in columns]
            utm = [
                _utm(c, m) for c, m in zip(
                    self.campaign[lo : min(lo + size, stop)].tolist(),
                    self.medium[lo : min(lo + size, stop)].tolist(), strict=True,
                )
            ]  # fmt: skip
            plans = self.plan[lo : min(lo + size, stop)].tolist()
            yield [
                Event(
                    site_id=site_ids[site],
                    ts=origin + timedelta(seconds=ts),
                    name=names[name],
                    visitor_id=visitor,
                    pathname=PATHS[path],
                    referrer_source=SOURCES[source],
                    country=places[place][0],
                    region=places[place][1],
                    device_type=agents[agent][0],
                    browser=agents[agent][1],
                    os=agents[agent][2],
                    props={"plan": PLANS[plan][0]} if name else {},
                    **tags,
                )
                for ts, site, visitor, name, path, source, place, agent, tags, plan in zip(
                    *cols, utm, plans, strict=True
                )
            ]


def _utm(campaign: int, medium: int) -> dict[str, str]:
    """The Event's utm fields: every event of a session carries its landing URL's."""
    if campaign < 0:
        return {}
    source, medium_name = UTM_MEDIA[medium]
    return {"utm_source": source, "utm_medium": medium_name, "utm_campaign": CAMPAIGNS[campaign]}


def generate(n_events: int, seed: int = 42) -> Stream:
    """~n/8 visitors (one UTC day each, as daily-rotating ids are), ~n/3 sessions, n events.

    Index columns are narrowed right after each draw (same values, same random
    stream) and temporaries freed early, so 100M events fit in ~5 GB, not ~20.
    """
    rng = np.random.default_rng(seed)
    n_visitors, n_sessions = max(1, n_events // 8), max(1, n_events // 3)
    v_day = rng.choice(DAYS, n_visitors, p=_day_weights())
    v_site = rng.choice(len(SITE_SHARES), n_visitors, p=SITE_SHARES).astype(np.int8)
    v_place = rng.choice(
        len(COUNTRIES) * REGIONS_PER_COUNTRY,
        n_visitors,
        p=_zipf(len(COUNTRIES) * REGIONS_PER_COUNTRY, 1.0),
    ).astype(np.int16)
    agent_weights = np.array([w for _, w in USER_AGENTS])
    v_agent = rng.choice(
        len(USER_AGENTS), n_visitors, p=agent_weights / agent_weights.sum()
    ).astype(np.int8)
    v_id = rng.integers(1, 2**62, n_visitors)

    s_visitor = rng.integers(0, n_visitors, n_sessions).astype(np.int32)
    s_source = rng.choice(len(SOURCES), n_sessions, p=_zipf(len(SOURCES), 1.3)).astype(np.int8)
    s_start = (
        v_day[s_visitor] * 86400.0
        + rng.choice(24, n_sessions, p=_hour_weights()) * 3600.0
        + rng.uniform(0, 3600, n_sessions)
    )
    del v_day
    sizes = rng.geometric(1 / 3, n_sessions)  # events per session, mean 3
    e_session = np.repeat(np.arange(n_sessions, dtype=np.int32), sizes)[:n_events]
    del sizes
    if len(e_session) < n_events:  # top up the last session
        e_session = np.concatenate(
            [e_session, np.full(n_events - len(e_session), n_sessions - 1, dtype=np.int32)]
        )
    gaps = np.minimum(rng.exponential(90.0, n_events), 1500.0)  # always < 30 minutes
    first = np.r_[True, e_session[1:] != e_session[:-1]]
    gaps[first] = 0.0
    cumulative = np.cumsum(gaps)
    del gaps
    offsets = cumulative - np.maximum.accumulate(np.where(first, cumulative, 0.0))
    del cumulative, first
    ts = np.minimum(s_start[e_session] + offsets, DAYS * 86400.0 - 1)
    del offsets, s_start
    ts = np.round(ts, 3)

    visitor = s_visitor[e_session]
    custom = rng.random(n_events) < CUSTOM_SHARE
    names = np.where(custom, rng.integers(1, len(CUSTOM_NAMES) + 1, n_events), 0).astype(np.int8)
    del custom
    order = np.argsort(ts, kind="stable")
    path = rng.choice(len(PATHS), n_events, p=_zipf(len(PATHS))).astype(np.int16)
    # Drawn after everything above, so the older columns keep their values for the seed.
    s_campaign = np.where(
        rng.random(n_sessions) < UTM_SHARE,
        rng.choice(len(CAMPAIGNS), n_sessions, p=_zipf(len(CAMPAIGNS))),
        -1,
    ).astype(np.int8)
    s_medium = rng.choice(len(UTM_MEDIA), n_sessions, p=_zipf(len(UTM_MEDIA), 0.8)).astype(np.int8)
    plan_weights = np.array([w for _, w in PLANS])
    v_plan = rng.choice(len(PLANS), n_visitors, p=plan_weights / plan_weights.sum()).astype(np.int8)
    visitor, e_session = visitor[order], e_session[order]
    return Stream(
        ts=ts[order],
        site=v_site[visitor],
        visitor=v_id[visitor],
        name=names[order],
        path=path[order],
        source=s_source[e_session],
        place=v_place[visitor],
        agent=v_agent[visitor],
        campaign=s_campaign[e_session],
        medium=s_medium[e_session],
        plan=v_plan[visitor],
    )
