from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from crucible import Category, Event, FaultSpec, Kind, Priority, SourceType, WorkSpec
from crucible._events import payload_size
from crucible._protocol import ROLES
from crucible._workload import (
    DEFAULT_MIX,
    KIND_WEIGHTS,
    MAX_CHAIN_EVENTS,
    PATTERNS,
    PAYLOAD_POOL_SIZE,
    PRIORITY_OVERRIDES,
    PRIORITY_WEIGHTS,
    SCENARIOS,
    SOURCES,
    STRUCTURED_PAD_STEP,
    Burst,
    Mixed,
    Pattern,
    Ramp,
    Scenario,
    Spike,
    Steady,
    build_services,
    centered_range,
    custom_scenario,
    generate_events,
    get_scenario,
    named_pattern,
    scenario_from_toml,
    service_roles,
)

# A count k ~ Binomial(n, p) lies within Z_BOUND standard deviations of n·p except with
# probability < 6e-7 (normal approximation, fine for n·p >= 500 as used here). The streams
# are seeded, so these checks are deterministic; the bound says how far off a correct
# generator could plausibly land, so the tolerance is principled rather than a guess.
Z_BOUND = 5.0


def binomial_tolerance(n: int, p: float) -> float:
    """Tolerance on an observed share k/n of a Binomial(n, p) count: Z_BOUND sigmas."""
    return Z_BOUND * math.sqrt(p * (1 - p) / n)


def fingerprint(events: list[Event]) -> list[tuple[Any, ...]]:
    return [
        (
            e.id,
            e.kind,
            e.source,
            e.priority,
            e.payload,
            e.size_bytes,
            e.correlation_id,
            e.causation_id,
            e.created_at,
        )
        for e in events
    ]


MEDIUM = SCENARIOS["medium"]
# _digest of generate_events(medium with structured_share 0.5, seed=7, count=3000).
PINNED_DIGEST = "52e600ce0932b383c45e3d76cc10b7d580b085a3828ba54bb438243bda005229"


# ------------------------------------------------------------------------------ mix tables


def test_default_mix_matches_design() -> None:
    assert dict(DEFAULT_MIX) == {
        Category.FILESYSTEM: 0.30,
        Category.DATABASE: 0.25,
        Category.EXTERNAL: 0.20,
        Category.MCP: 0.10,
        Category.SERVICE: 0.10,
        Category.SYSTEM: 0.05,
    }
    assert math.isclose(math.fsum(DEFAULT_MIX.values()), 1.0)


def test_kind_weights_cover_each_category_exactly() -> None:
    assert set(KIND_WEIGHTS) == set(Category)
    for category, weights in KIND_WEIGHTS.items():
        kinds = [k for k, _ in weights]
        assert sorted(kinds, key=str) == sorted(Kind.of(category), key=str)
        assert all(w > 0 for _, w in weights)
    fs = dict(KIND_WEIGHTS[Category.FILESYSTEM])
    db = dict(KIND_WEIGHTS[Category.DATABASE])
    system = dict(KIND_WEIGHTS[Category.SYSTEM])
    assert fs[Kind.FILE_MODIFIED] == max(fs.values())
    assert db[Kind.RECORD_UPDATED] == max(db.values())
    assert db[Kind.TABLE_DROPPED] == min(db.values())
    assert system[Kind.EMERGENCY_SHUTDOWN] == min(system.values())


def test_priority_weights_are_mostly_normal() -> None:
    weights = dict(PRIORITY_WEIGHTS)
    assert set(weights) == set(Priority)
    assert math.isclose(sum(weights.values()), 1.0)
    assert weights[Priority.NORMAL] > 0.5
    assert weights[Priority.CRITICAL] == min(weights.values())


def test_sources_have_matching_types() -> None:
    expected = {
        Category.FILESYSTEM: {SourceType.FILE_WATCHER},
        Category.DATABASE: {SourceType.DATABASE},
        Category.EXTERNAL: {SourceType.API, SourceType.WEBHOOK},
        Category.MCP: {SourceType.MCP_CLIENT},
        Category.SERVICE: {SourceType.SERVICE},
        Category.SYSTEM: {SourceType.SYSTEM},
    }
    for category, sources in SOURCES.items():
        assert sources
        assert {s.type for s in sources} == expected[category]
    ids = [s.id for sources in SOURCES.values() for s in sources]
    assert len(ids) == len(set(ids))


# ------------------------------------------------------------------------------- scenarios


@pytest.mark.parametrize(
    ("name", "events", "services", "nominal_bytes"),
    [
        ("light", 100, 3, 512),
        ("medium", 1_000, 10, 1024),
        ("heavy", 10_000, 50, 4096),
        ("stress", 100_000, 100, 8192),
    ],
)
def test_named_scenarios_have_design_sizes(
    name: str, events: int, services: int, nominal_bytes: int
) -> None:
    scenario = get_scenario(name)
    assert scenario.name == name
    assert scenario.events == events
    assert scenario.services == services
    assert scenario.payload_bytes == (nominal_bytes // 2, nominal_bytes * 3 // 2)
    assert scenario.payload_mean_bytes == nominal_bytes
    assert scenario.mix == DEFAULT_MIX
    assert scenario.work == WorkSpec(kind="hash", rounds=1)


def test_get_scenario_unknown_lists_names() -> None:
    with pytest.raises(ValueError, match="light, medium, heavy, stress"):
        get_scenario("huge")


def test_centered_range_keeps_the_nominal_mean() -> None:
    assert centered_range(512) == (256, 768)
    assert centered_range(5) == (3, 7)
    assert centered_range(1) == (1, 1)
    with pytest.raises(ValueError, match="payload_bytes"):
        centered_range(0)


def test_scenario_is_hashable_and_normalizes_mix() -> None:
    by_name: dict[Any, float] = {"database": 1.0}  # string keys are accepted at run time
    a = Scenario(name="a", events=1, services=1, payload_bytes=(1, 2), mix=by_name)
    assert a.mix[Category.DATABASE] == 1.0
    assert a.mix[Category.FILESYSTEM] == 0.0
    b = Scenario(name="a", events=1, services=1, payload_bytes=(1, 2), mix={Category.DATABASE: 1})
    assert a == b
    assert hash(a) == hash(b)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "Scenario.name"),
        ({"events": 0}, "Scenario.events must be an integer > 0"),
        ({"events": 1.5}, "Scenario.events"),
        ({"events": True}, "Scenario.events"),
        ({"services": -1}, "Scenario.services must be an integer > 0"),
        ({"payload_bytes": (0, 10)}, r"0 < min <= max"),
        ({"payload_bytes": (10, 5)}, r"0 < min <= max"),
        ({"payload_bytes": (1, 2, 3)}, "Scenario.payload_bytes"),
        ({"mix": {"filesystem": 0.5}}, "sum to 1"),
        ({"mix": {"filesystem": 0.5, "disk": 0.5}}, "unknown category 'disk'.*filesystem"),
        ({"mix": {"filesystem": -0.5, "database": 1.5}}, r"Scenario.mix\['filesystem'\]"),
        ({"structured_share": 1.5}, "Scenario.structured_share"),
        ({"work": "hash"}, "Scenario.work"),
        ({"seed": "x"}, "Scenario.seed"),
    ],
)
def test_scenario_validation(changes: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"name": "x", "events": 10, "services": 2, "payload_bytes": (8, 16)}
    fields.update(changes)
    with pytest.raises(ValueError, match=message):
        Scenario(**fields)


def test_custom_scenario_from_kwargs() -> None:
    scenario = custom_scenario(
        events=500,
        services=4,
        payload_bytes=2048,
        work={"kind": "parse", "rounds": 2},
        mix={"filesystem": 0.5, "mcp": 0.5},
        structured_share=0.5,
        seed=7,
    )
    assert scenario.name == "custom"
    assert scenario.payload_bytes == (1024, 3072)
    assert scenario.work == WorkSpec(kind="parse", rounds=2)
    assert scenario.mix[Category.MCP] == 0.5
    assert scenario.seed == 7
    pair = custom_scenario(name="p", events=1, services=1, payload_bytes=[10, 20], work="none")
    assert pair.payload_bytes == (10, 20)
    assert pair.work.kind == "none"


def test_custom_scenario_from_base() -> None:
    scenario = custom_scenario(base="heavy", events=20_000)
    heavy = SCENARIOS["heavy"]
    assert scenario == replace(heavy, name="custom", events=20_000)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"events": 1, "services": 1, "payload_bytes": 8, "colour": 1}, "unknown.*colour"),
        ({"events": 1}, "missing scenario key.*services, payload_bytes"),
        ({"base": "huge"}, "unknown scenario 'huge'"),
        ({"base": "light", "work": {"kind": "hash", "speed": 2}}, "work: unknown key.*speed"),
        ({"base": "light", "work": {"kind": "sleep"}}, "work: work kind"),
        ({"base": "light", "work": 3}, "work must be"),
        ({"base": "light", "payload_bytes": "big"}, "Scenario.payload_bytes"),
    ],
)
def test_custom_scenario_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        custom_scenario(**kwargs)


TOML = """
[scenario]
name = "nightly"
events = 2000
services = 8
payload_bytes = [100, 300]
work = { kind = "parse", rounds = 3 }
mix = { filesystem = 0.6, database = 0.4 }
structured_share = 0.5
seed = 11
"""


def test_scenario_from_toml_text_and_file(tmp_path: Path) -> None:
    scenario = scenario_from_toml(TOML)
    assert scenario.name == "nightly"
    assert scenario.events == 2000
    assert scenario.payload_bytes == (100, 300)
    assert scenario.work == WorkSpec(kind="parse", rounds=3)
    assert scenario.mix[Category.DATABASE] == 0.4
    assert scenario.seed == 11
    path = tmp_path / "perf.toml"
    path.write_text(TOML, encoding="utf-8")
    assert scenario_from_toml(path) == scenario
    assert scenario_from_toml(str(path)) == scenario


def test_scenario_from_toml_dotted_table_and_base() -> None:
    text = '[tool.crucible-perf.scenario]\nbase = "medium"\nname = "m2"\npayload_bytes = 64\n'
    scenario = scenario_from_toml(text, table="tool.crucible-perf.scenario")
    assert scenario == replace(SCENARIOS["medium"], name="m2", payload_bytes=(32, 96))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[other]\nevents = 1\n", r"no \[scenario\] table"),
        ("scenario = 3\n", r"\[scenario\] must be a table"),
        ('[scenario]\nbase = "light"\nbogus = 1\n', r"\[scenario\]: unknown.*bogus.*accepted"),
        ('[scenario]\nbase = "light"\nevents = 0\n', r"\[scenario\]: Scenario.events"),
        ("[scenario\nevents = 1\n", "invalid TOML"),
    ],
)
def test_scenario_from_toml_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scenario_from_toml(text)


def test_scenario_from_toml_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        scenario_from_toml(tmp_path / "absent.toml")


# ---------------------------------------------------------------------------------- events


def test_same_seed_same_events() -> None:
    a = generate_events(MEDIUM, seed=3, created_at=0.0)
    b = generate_events(MEDIUM, seed=3, created_at=0.0)
    assert fingerprint(a) == fingerprint(b)
    assert len(a) == MEDIUM.events


def _digest(events: list[Event]) -> str:
    """sha256 over every field of every event, payloads included (records as sorted JSON)."""
    h = hashlib.sha256()
    for e in events:
        payload = (
            e.payload if isinstance(e.payload, bytes) else json.dumps(e.payload, sort_keys=True)
        )
        fields = (
            e.id,
            e.kind.value,
            e.source.id,
            e.source.type.value,
            e.priority.value,
            e.size_bytes,
            e.correlation_id,
            e.causation_id,
            e.created_at,
        )
        h.update(repr(fields).encode())
        h.update(payload if isinstance(payload, bytes) else payload.encode())
    return h.hexdigest()


def test_a_seeded_stream_is_pinned() -> None:
    # The exact stream of one seed, structured payloads and chains included: a change to
    # the generator that alters any event (its draws, their order, a payload) shows here.
    scenario = replace(MEDIUM, structured_share=0.5)
    events = generate_events(scenario, seed=7, count=3000, created_at=0.0)
    assert any(e.causation_id for e in events) and any(isinstance(e.payload, dict) for e in events)
    assert _digest(events) == PINNED_DIGEST


def test_different_seed_different_events() -> None:
    a = generate_events(MEDIUM, seed=1, created_at=0.0)
    b = generate_events(MEDIUM, seed=2, created_at=0.0)
    assert [e.kind for e in a] != [e.kind for e in b]
    assert {e.id for e in a}.isdisjoint(e.id for e in b)


def test_seed_defaults_to_scenario_seed_and_count_gives_a_prefix() -> None:
    scenario = replace(MEDIUM, seed=42)
    full = generate_events(scenario, created_at=1.0)
    assert full[0].id == "medium-42-0"
    assert fingerprint(generate_events(scenario, seed=42, created_at=1.0)) == fingerprint(full)
    assert fingerprint(generate_events(scenario, count=77, created_at=1.0)) == fingerprint(
        full[:77]
    )
    assert generate_events(scenario, count=0) == []
    with pytest.raises(ValueError, match="count"):
        generate_events(scenario, count=-1)


def test_ids_are_unique_and_formatted() -> None:
    events = generate_events(MEDIUM, seed=5)
    assert [e.id for e in events] == [f"medium-5-{i}" for i in range(MEDIUM.events)]


def test_created_at_is_one_stamp() -> None:
    events = generate_events(SCENARIOS["light"])
    assert len({e.created_at for e in events}) == 1
    assert {e.created_at for e in generate_events(SCENARIOS["light"], created_at=9.5)} == {9.5}


N_MIX = 20_000


@pytest.fixture(scope="module")
def many_events() -> list[Event]:
    return generate_events(MEDIUM, seed=2024, count=N_MIX, created_at=0.0)


def test_category_mix_within_binomial_bound(many_events: list[Event]) -> None:
    counts = Counter(e.category for e in many_events)
    for category, share in DEFAULT_MIX.items():
        observed = counts[category] / N_MIX
        # 30 %: ±1.6 points; 5 %: ±0.77 points at 20,000 events.
        assert abs(observed - share) <= binomial_tolerance(N_MIX, share), category


def test_mix_without_a_category_never_draws_it() -> None:
    scenario = custom_scenario(base="medium", mix={"mcp": 0.5, "system": 0.5})
    assert {e.category for e in generate_events(scenario)} == {Category.MCP, Category.SYSTEM}


def test_kinds_belong_to_their_category(many_events: list[Event]) -> None:
    for event in many_events:
        assert event.kind in Kind.of(event.category)
        assert event.source in SOURCES[event.category]
        if event.category is Category.EXTERNAL:
            webhook = event.kind is Kind.WEBHOOK_TRIGGERED
            assert (event.source.type is SourceType.WEBHOOK) == webhook


def test_kind_shares_follow_weights(many_events: list[Event]) -> None:
    by_category = Counter(e.category for e in many_events)
    kinds = Counter(e.kind for e in many_events)
    for category, weights in KIND_WEIGHTS.items():
        n = by_category[category]
        total = sum(w for _, w in weights)
        for kind, weight in weights:
            p = weight / total
            assert abs(kinds[kind] / n - p) <= binomial_tolerance(n, p) + 1 / n, kind


def test_priorities_follow_weights(many_events: list[Event]) -> None:
    counts = Counter(e.priority for e in many_events)
    for priority, p in PRIORITY_WEIGHTS:
        # The override (emergency shutdown is CRITICAL) moves at most 0.05 % of events.
        assert abs(counts[priority] / N_MIX - p) <= binomial_tolerance(N_MIX, p) + 0.001
    for kind, priority in PRIORITY_OVERRIDES.items():
        assert all(e.priority is priority for e in many_events if e.kind is kind)


def test_payload_sizes_within_range_and_mean_near_nominal(many_events: list[Event]) -> None:
    lo, hi = MEDIUM.payload_bytes
    assert all(lo <= e.size_bytes <= hi for e in many_events)
    assert all(e.size_bytes == payload_size(e.payload) for e in many_events[:2000])
    raw = [e.size_bytes for e in many_events if isinstance(e.payload, bytes)]
    # Uniform on [lo, hi]: sd = (hi - lo) / sqrt(12); the sample mean lies within Z_BOUND
    # standard errors. Structured payloads sit up to one pad step below their drawn size.
    se = (hi - lo) / math.sqrt(12) / math.sqrt(len(raw))
    assert abs(sum(raw) / len(raw) - MEDIUM.payload_mean_bytes) <= Z_BOUND * se
    se_all = (hi - lo) / math.sqrt(12) / math.sqrt(N_MIX)
    mean_all = sum(e.size_bytes for e in many_events) / N_MIX
    assert abs(mean_all - MEDIUM.payload_mean_bytes) <= Z_BOUND * se_all + STRUCTURED_PAD_STEP


def test_structured_share_and_records(many_events: list[Event]) -> None:
    structured = [e for e in many_events if isinstance(e.payload, dict)]
    p = MEDIUM.structured_share
    assert abs(len(structured) / N_MIX - p) <= binomial_tolerance(N_MIX, p)
    for event in structured:
        assert isinstance(event.payload, dict)
        assert event.payload["op"] == event.kind.value.split(".", 1)[1]
    db = next(e for e in structured if e.category is Category.DATABASE)
    assert isinstance(db.payload, dict)
    assert {"table", "row"} <= set(db.payload)
    mcp = next(e for e in structured if e.category is Category.MCP)
    assert isinstance(mcp.payload, dict)
    assert {"tool", "args"} <= set(mcp.payload)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_payloads_in_range(name: str) -> None:
    scenario = SCENARIOS[name]
    lo, hi = scenario.payload_bytes
    events = generate_events(scenario, count=2000)
    assert all(lo <= e.size_bytes <= hi for e in events)
    assert any(isinstance(e.payload, dict) for e in events)


def test_tiny_payload_range_still_works() -> None:
    scenario = custom_scenario(events=200, services=1, payload_bytes=(1, 1), structured_share=0.5)
    events = generate_events(scenario)
    assert all(e.size_bytes == 1 for e in events if isinstance(e.payload, bytes))
    assert all(e.size_bytes == payload_size(e.payload) for e in events)


def test_correlation_chains(many_events: list[Event]) -> None:
    by_id = {e.id: e for e in many_events}
    position = {e.id: i for i, e in enumerate(many_events)}
    groups: Counter[str] = Counter()
    for event in many_events:
        if event.correlation_id is None:
            assert event.causation_id is None
            continue
        groups[event.correlation_id] += 1
        root = by_id[event.correlation_id]
        assert root.correlation_id == root.id
        assert root.causation_id is None
        assert root.category is event.category
        if event.causation_id is not None:
            cause = by_id[event.causation_id]
            assert cause.correlation_id == event.correlation_id
            assert position[cause.id] < position[event.id]
    assert groups
    assert max(groups.values()) <= MAX_CHAIN_EVENTS
    assert any(n > 1 for n in groups.values())
    assert sum(e.correlation_id is not None for e in many_events) < N_MIX


def test_stress_scenario_shares_payload_objects() -> None:
    stress = SCENARIOS["stress"]
    events = generate_events(stress, created_at=0.0)
    assert len(events) == 100_000
    blobs = {id(e.payload): e.payload for e in events if isinstance(e.payload, bytes)}
    assert len(blobs) <= PAYLOAD_POOL_SIZE
    pads = {
        id(e.payload["pad"]): e.payload["pad"]
        for e in events
        if isinstance(e.payload, dict) and "pad" in e.payload
    }
    hi = stress.payload_bytes[1]
    assert len(pads) <= hi // STRUCTURED_PAD_STEP + 1  # one per multiple of the step
    distinct_bytes = sum(len(b) for b in blobs.values()) + sum(len(p) for p in pads.values())
    # 100,000 x 8 KiB would be 800 MiB; the pools hold a few MiB.
    assert distinct_bytes < 16 * 1024 * 1024
    assert sum(e.size_bytes for e in events) > 700 * 1024 * 1024


# -------------------------------------------------------------------------------- services


def test_service_roles_round_robin() -> None:
    assert service_roles(0) == []
    assert service_roles(6) == [*ROLES, ROLES[0], ROLES[1]]
    with pytest.raises(ValueError, match="number of services"):
        service_roles(-1)


def test_build_services() -> None:
    latencies: list[float] = []
    fault = FaultSpec(error_rate=0.5)
    scenario = replace(MEDIUM, work=WorkSpec(kind="parse", rounds=2))
    services = build_services(scenario, on_done=latencies.append, faults={3: fault})
    assert len(services) == scenario.services
    assert [s.name for s in services] == [f"{r}-{i}" for i, r in enumerate(service_roles(10))]
    assert [s.role for s in services] == service_roles(10)
    assert services[3].faults == fault
    assert not services[0].faults.any
    assert all(s.work == scenario.work and s.on_done is not None for s in services)
    with pytest.raises(ValueError, match=r"service indexes 0..9"):
        build_services(scenario, faults={10: fault})


# -------------------------------------------------------------------------------- patterns


def check_schedule(pattern: Pattern) -> list[float]:
    schedule = pattern.schedule()
    assert len(schedule) == pattern.arrivals
    assert all(a <= b for a, b in itertools.pairwise(schedule))
    assert schedule[0] == 0.0
    assert schedule[-1] < pattern.duration_s
    return schedule


def test_steady() -> None:
    schedule = check_schedule(Steady(100.0, 2.0))
    assert len(schedule) == 200
    assert schedule[1] == pytest.approx(0.01)
    assert schedule[-1] == pytest.approx(1.99)


def test_burst() -> None:
    pattern = Burst(10, 3, 0.5)
    schedule = check_schedule(pattern)
    assert pattern.duration_s == 1.5
    assert Counter(schedule) == {0.0: 10, 0.5: 10, 1.0: 10}


def test_ramp_up_second_half_denser() -> None:
    pattern = Ramp(100.0, 300.0, 2.0)
    schedule = check_schedule(pattern)
    assert len(schedule) == 400
    first = sum(t < 1.0 for t in schedule)
    # Λ(1) = 100·1 + 200·1²/(2·2) = 150 arrivals in [0, 1): exact, not approximate.
    assert first == 150
    assert len(schedule) - first == 250
    gaps = [b - a for a, b in itertools.pairwise(schedule)]
    assert gaps[0] > gaps[-1]


def test_ramp_down_and_from_zero() -> None:
    down = check_schedule(Ramp(300.0, 100.0, 2.0))
    assert sum(t < 1.0 for t in down) == 250
    up = check_schedule(Ramp(0.0, 200.0, 1.0))
    assert len(up) == 100
    assert sum(t < 0.5 for t in up) == 25


def test_spike_has_a_denser_middle() -> None:
    pattern = Spike(100.0, 500.0, 4.0, 2.0, 10.0)
    schedule = check_schedule(pattern)
    assert len(schedule) == 100 * 8 + 500 * 2
    before = sum(2.0 <= t < 4.0 for t in schedule)
    during = sum(4.0 <= t < 6.0 for t in schedule)
    after = sum(6.0 <= t < 8.0 for t in schedule)
    assert before == after == 200
    assert during == 1000


def test_mixed_concatenates_parts() -> None:
    pattern = Mixed((Steady(10.0, 1.0), Burst(5, 2, 0.5), Steady(20.0, 0.5)))
    schedule = check_schedule(pattern)
    assert pattern.duration_s == 2.5
    assert len(schedule) == 10 + 10 + 10
    assert schedule[10:20] == [1.0] * 5 + [1.5] * 5
    assert schedule[20] == 2.0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Steady(0.0, 1.0), "Steady.rate_eps must be > 0"),
        (lambda: Steady(1.0, math.inf), "Steady.duration_s must be a finite number"),
        (lambda: Burst(0, 1, 1.0), "Burst.size"),
        (lambda: Burst(1, 1, 0.0), "Burst.gap_s"),
        (lambda: Ramp(0.0, 0.0, 1.0), "not both 0"),
        (lambda: Ramp(-1.0, 1.0, 1.0), "Ramp.from_eps must be >= 0"),
        (lambda: Spike(10.0, 5.0, 0.0, 1.0, 2.0), "peak_eps"),
        (lambda: Spike(1.0, 5.0, 1.5, 1.0, 2.0), "within its duration"),
        (lambda: Mixed(()), "Mixed.parts"),
        (lambda: Mixed((3,)), "Mixed.parts must hold patterns"),  # type: ignore[arg-type]
    ],
)
def test_pattern_validation(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("name", PATTERNS)
@pytest.mark.parametrize("events", [1, 2, 3, 49, 50, 51, 1000, 12_345])
def test_named_pattern_exact_counts(name: str, events: int) -> None:
    pattern = named_pattern(name, events, rate_eps=500.0)
    schedule = check_schedule(pattern)
    assert len(schedule) == events
    assert pattern.duration_s == pytest.approx(events / 500.0)


def test_named_pattern_shapes() -> None:
    burst = named_pattern("burst", 500)
    assert isinstance(burst, Burst)
    assert (burst.size, burst.count) == (50, 10)
    ramp = named_pattern("ramp", 1000, 100.0)
    assert isinstance(ramp, Ramp)
    assert (ramp.from_eps, ramp.to_eps, ramp.duration_s) == (50.0, 150.0, 10.0)
    spike = named_pattern("spike", 1400, 100.0)
    assert isinstance(spike, Spike)
    assert spike.peak_eps == pytest.approx(5 * spike.base_eps)
    assert spike.length_s == pytest.approx(0.1 * spike.duration_s)
    schedule = spike.schedule()
    middle = sum(spike.at_s <= t < spike.at_s + spike.length_s for t in schedule)
    assert middle == pytest.approx(500, abs=1)
    mixed = named_pattern("mixed", 3000)
    assert isinstance(mixed, Mixed)
    assert [type(p) for p in mixed.parts] == [Steady, Burst, Spike]


def test_named_pattern_errors() -> None:
    with pytest.raises(ValueError, match="steady, burst, ramp, spike, mixed"):
        named_pattern("sine", 10)
    with pytest.raises(ValueError, match="events"):
        named_pattern("steady", 0)
    with pytest.raises(ValueError, match="rate_eps"):
        named_pattern("steady", 10, rate_eps=0.0)
