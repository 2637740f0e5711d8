"""Attacks on vocabulary code proposals (issue 16 item 7): each is refused, audited, and changes nothing.

The identity is the operating-system account (never TWINHUB_USER); who speaks for a department and who
is a steward come from twinhub.yaml's governance section.
"""

from __future__ import annotations

import pathlib

import pytest
import yaml
from click.testing import CliRunner

from twinhub.catalog import audit
from twinhub.catalog.query import run_query
from twinhub.cli.main import main
from twinhub.hub import review_codes
from twinhub.hub.home import Hub

ME = audit.current_actor()


def hub_with(tmp_path: pathlib.Path, stewards: list[str] | None = None) -> Hub:
    hub = Hub.open(tmp_path / "home")
    governance: dict = {"departments": {"transport": [ME], "water": ["wendy"]}}
    if stewards is not None:
        governance["stewards"] = stewards
    (hub.home / "twinhub.yaml").write_text(yaml.safe_dump({"governance": governance}), encoding="utf-8")
    return Hub.open(hub.home)


def cli(hub: Hub, *args: str, env: dict | None = None):
    return CliRunner().invoke(main, ["--home", str(hub.home), *args], env=env, catch_exceptions=False)


def propose(hub: Hub, vocabulary: str, code: str, *extra: str, department: str = "transport", env=None):
    return cli(hub, "review", "propose-code", vocabulary, code, "--department", department, *extra,
               "--reason", "we need it", env=env)


def state(hub: Hub) -> tuple:
    """Everything a proposal or decision could change: pending files, the overlay, the vocabularies."""
    files = sorted(str(p.relative_to(hub.home)) for p in hub.home.rglob("*")
                   if p.is_file() and ("review/codes" in str(p) or "vocabularies" in str(p)))
    fresh = Hub.open(hub.home).pack
    return files, {v.name: (v.version, len(v.concepts)) for v in fresh.vocabularies.values()}


def refusals(hub: Hub) -> list[str]:
    return [r[0] for r in run_query(hub.lake, "SELECT message FROM catalog.audit WHERE status = 'refused' "
                                              "ORDER BY happened_at").rows]


@pytest.mark.parametrize("vocabulary, code, extra, says", [
    ("transit_mode", "metro", ["--label", "zh=新地铁"], "'metro' is already a code of it in transit_mode"),
    ("admin_division", "310103", ["--label", "zh=卢湾区"], "'310103' is already outdated (replaced by '310101')"),
    ("transit_mode", "Cable Tram", ["--label", "en=Cable tram"], "invalid code 'Cable Tram'"),
    ("transit_mode", "../../twinhub", ["--label", "en=x"], "invalid code '../../twinhub'"),
    ("transit_mode", "x", ["--label", "en=x"], "invalid code 'x'"),
    ("admin_division", "3101999", ["--label", "zh=新区"], "codes of admin_division are 6 digits"),
    ("transit_mode", "underground_rail", ["--label", "zh=地铁"], "'地铁' already maps to code 'metro'"),
    ("transit_mode", "funicular", ["--label", "en=Funicular", "--synonym", "Subway"], "'Subway' already maps to code 'metro'"),
    ("transit_mode", "funicular", [], "give at least one label"),
    ("transit_mode", "funicular", ["--label", "english=Funicular"], "a label is LANG=TEXT"),
    ("transit_mode", "funicular", ["--label", "en=Funicular", "--broader", "spaceship"], "--broader 'spaceship' is not"),
    ("transit_modes", "funicular", ["--label", "en=Funicular"], "no vocabulary 'transit_modes'"),
    ("../standards/vocabularies/transit_mode", "funicular", ["--label", "en=Funicular"], "no vocabulary"),
])
def test_proposals_that_cannot_be_codes_are_refused(tmp_path, vocabulary, code, extra, says):
    hub = hub_with(tmp_path)
    before = state(hub)
    result = propose(hub, vocabulary, code, *extra)
    assert result.exit_code == 2 and says in result.output, result.output
    assert state(hub) == before and review_codes.pending(hub) == []
    assert any(says in m for m in refusals(hub))


def test_a_code_proposed_twice_waits_once(tmp_path):
    hub = hub_with(tmp_path)
    assert propose(hub, "transit_mode", "funicular", "--label", "en=Funicular").exit_code == 0
    again = propose(hub, "transit_mode", "funicular", "--label", "en=Funicular railway")
    assert again.exit_code == 2 and "already proposed and waits for a steward" in again.output
    assert [p.labels for p in review_codes.pending(hub)] == [{"en": "Funicular"}]


@pytest.mark.parametrize("department, says", [
    ("water", f"{ME} may not propose on behalf of department 'water'"),
    ("parks", "no account speaks for department 'parks'"),
])
def test_proposing_on_behalf_of_another_department_is_refused(tmp_path, department, says):
    hub = hub_with(tmp_path)
    before = state(hub)
    # claiming to be water's account through the environment changes nothing: the identity is the OS account
    result = propose(hub, "transit_mode", "funicular", "--label", "en=Funicular", department=department,
                     env={"TWINHUB_USER": "wendy", "USER": "wendy", "LOGNAME": "wendy", "TWINHUB_DEPARTMENT": department})
    assert result.exit_code == 2 and says in result.output, result.output
    assert state(hub) == before
    assert any(says in m for m in refusals(hub))


def test_a_non_steward_can_neither_accept_nor_reject(tmp_path):
    hub = hub_with(tmp_path, stewards=["stella"])
    assert propose(hub, "transit_mode", "funicular", "--label", "en=Funicular").exit_code == 0
    before = state(hub)
    for action in ("approve", "reject"):
        result = cli(hub, "review", action, "code:transit_mode.funicular", "--reason", "I proposed it, so",
                     env={"TWINHUB_USER": "stella", "USER": "stella", "LOGNAME": "stella"})
        assert result.exit_code == 2 and f"{ME} is not a steward of this hub (stewards: stella)" in result.output
    assert state(hub) == before  # still pending, nothing added
    assert Hub.open(hub.home).pack.vocabulary("transit_mode").concept("funicular") is None
    assert [p.id for p in review_codes.pending(hub)] == ["code:transit_mode.funicular"]
    assert sum("is not a steward" in m for m in refusals(hub)) == 2


@pytest.mark.parametrize("review_id", [
    "code:transit_mode.funicular/../../../twinhub", "code:../../twinhub.yaml", "code:transit_mode.", "code:",
])
def test_review_ids_cannot_reach_other_files(tmp_path, review_id):
    hub = hub_with(tmp_path)
    assert propose(hub, "transit_mode", "funicular", "--label", "en=Funicular").exit_code == 0
    before = state(hub), (hub.home / "twinhub.yaml").read_bytes()
    for action in ("approve", "reject"):
        result = cli(hub, "review", action, review_id, "--reason", "x")
        assert result.exit_code == 2 and "no pending code proposal" in result.output, result.output
    assert (state(hub), (hub.home / "twinhub.yaml").read_bytes()) == before


def test_a_tampered_overlay_is_refused_by_name_not_silently_loaded(tmp_path):
    """A hand-edited overlay naming a code's broader that does not exist stops the pack loading, saying where."""
    hub = hub_with(tmp_path)
    overlay = hub.home / "vocabularies" / "transit_mode.yaml"
    overlay.parent.mkdir()
    overlay.write_text(yaml.safe_dump({"vocabulary": "transit_mode", "version": "1.1.0",
                                       "concepts": [{"code": "hover", "labels": {"en": "Hover"}, "broader": "nope"}]}),
                       encoding="utf-8")
    from twinhub.standards.pack import StandardsError

    with pytest.raises(StandardsError, match="transit_mode.yaml: concept 'hover': broader 'nope'"):
        Hub.open(hub.home).pack.vocabulary("transit_mode")
