"""Vocabulary codes proposed by departments and decided by stewards, through the review queue.

A department proposes a code its data needs (a new transit mode, a facility category)::

    twinhub review propose-code transit_mode cable_tram --department transport \\
        --label en="Cable tram" --label zh=缆车轨道 --reason "the Bund sightseeing tunnel"

It waits in ``<home>/review/codes/<vocabulary>.<code>.yaml`` as ``code:<vocabulary>.<code>``
(``twinhub review list``) until a steward approves or rejects it. An accepted code is added to
the hub's overlay ``<home>/vocabularies/<vocabulary>.yaml``, which the standards pack loads over
its own vocabulary (standards/pack.py ``load_additions``) with the vocabulary's next minor
version: no fork of the pack. Until then the code is no code: manifests and crosswalks mapping
onto it are refused, rows carrying it stay quarantined.

Who may: the proposer must be one of the department's accounts (``governance.departments`` in
twinhub.yaml), the decider one of ``governance.stewards`` (none listed: the account owning the
hub home). Both are the operating-system account (catalog/audit.py), never an environment variable.
Every proposal, decision and refusal is in ``review/decisions.jsonl`` and ``catalog.audit``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pathlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from twinhub.catalog import audit
from twinhub.hub.home import Hub
from twinhub.hub.review import ReviewError, _decided, _reason, decisions
from twinhub.standards.labels import Matcher
from twinhub.standards.pack import StandardsError, Vocabulary, load_additions

PREFIX = "code:"  # review ids of code proposals: code:<vocabulary>.<code>
OVERLAY = "vocabularies"  # under the hub home: accepted additions, loaded over the pack's vocabularies
LANGUAGE = re.compile(r"^[a-z]{2}(-[A-Za-z]{2,4})?$")
SNAKE = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
LABEL_MAX = 200


@dataclass(frozen=True)
class CodeProposal:
    vocabulary: str
    code: str
    labels: dict[str, str]
    synonyms: tuple[str, ...]
    broader: str | None
    department: str
    reason: str
    proposed_by: str
    proposed_at: str

    @property
    def id(self) -> str:
        return f"{PREFIX}{self.vocabulary}.{self.code}"

    def concept(self) -> dict:
        return {"code": self.code, "labels": self.labels, **({"synonyms": list(self.synonyms)} if self.synonyms else {}),
                **({"broader": self.broader} if self.broader else {})}


def is_code_id(review_id: str) -> bool:
    return review_id.startswith(PREFIX)


def _folder(hub: Hub) -> pathlib.Path:
    return hub.home / "review" / "codes"


@contextlib.contextmanager
def _locked(hub: Hub) -> Iterator[None]:
    """One proposal or decision at a time: two stewards accepting at once must not lose a code."""
    import fcntl

    folder = _folder(hub)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / "code-proposals.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _path(hub: Hub, vocabulary: str, code: str) -> pathlib.Path:
    return _folder(hub) / f"{vocabulary}.{code}.yaml"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def stewards(hub: Hub) -> list[str]:
    """The accounts that decide: ``governance.stewards``, or the owner of the hub home."""
    listed = list(hub.config.governance.stewards)
    if listed:
        return listed
    import pwd

    uid = os.stat(hub.home).st_uid
    try:
        return [pwd.getpwuid(uid).pw_name]
    except KeyError:
        return [f"uid:{uid}"]


def _check_member(hub: Hub, department: str, who: str, review_id: str) -> None:
    members = hub.config.governance.departments.get(department)
    if not members:
        raise ReviewError(review_id, f"no account speaks for department {department!r}: a steward lists its people "
                                     f"in twinhub.yaml (governance: {{departments: {{{department}: [ACCOUNT]}}}})")
    if who not in members:
        raise ReviewError(review_id, f"{who} may not propose on behalf of department {department!r} (its accounts: "
                                     f"{', '.join(members)}); propose for your own department")


def check_steward(hub: Hub, who: str, review_id: str) -> None:
    allowed = stewards(hub)
    if who not in allowed:
        raise ReviewError(review_id, f"{who} is not a steward of this hub (stewards: {', '.join(allowed)}); "
                                     "a steward decides code proposals")


def _code_shape(vocabulary: Vocabulary, code: str, review_id: str) -> None:
    """A code looks like the vocabulary's others: digits of the same lengths, or snake_case words."""
    current = vocabulary.codes
    if current and all(c.isdigit() for c in current):
        lengths = sorted({len(c) for c in current})
        if not (code.isdigit() and len(code) in lengths):
            raise ReviewError(review_id, f"invalid code {code!r}: codes of {vocabulary.name} are "
                                         f"{' or '.join(map(str, lengths))} digits")
    elif not SNAKE.fullmatch(code):
        raise ReviewError(review_id, f"invalid code {code!r}: a code of {vocabulary.name} is 2-63 lower-case letters, "
                                     "digits and _ starting with a letter (e.g. cable_tram); labels carry the names")


def _labels(vocabulary: Vocabulary, labels: dict[str, str], synonyms: tuple[str, ...], review_id: str) -> None:
    if not labels:
        raise ReviewError(review_id, "give at least one label: --label en=\"Cable tram\" --label zh=缆车轨道")
    for lang, text in labels.items():
        if not LANGUAGE.fullmatch(lang) or not text.strip() or len(text) > LABEL_MAX:
            raise ReviewError(review_id, f"label {lang}={text!r}: a label is LANG=TEXT with a two-letter language "
                                         f"and 1-{LABEL_MAX} characters")
    matcher = Matcher(vocabulary)
    for text in [*labels.values(), *synonyms]:
        found = matcher.lookup(text)
        if found is not None:
            raise ReviewError(review_id, f"{text!r} already maps to code {found.code!r} of {vocabulary.name}: map your "
                                         "values onto it (labels: or a crosswalk) instead of proposing another code")


def propose(hub: Hub, vocabulary_name: str, code: str, department: str, labels: dict[str, str],
            synonyms: tuple[str, ...], broader: str | None, reason: str) -> CodeProposal:
    """Store a department's proposal for review; refused (and audited by the CLI) when it cannot be one."""
    with _locked(hub):
        return _propose(hub, vocabulary_name, code, department, labels, synonyms, broader, reason)


def _propose(hub: Hub, vocabulary_name: str, code: str, department: str, labels: dict[str, str],
             synonyms: tuple[str, ...], broader: str | None, reason: str) -> CodeProposal:
    review_id = f"{PREFIX}{vocabulary_name}.{code}"
    who = audit.current_actor()
    _check_member(hub, department, who, review_id)
    vocabulary = hub.pack.vocabularies.get(vocabulary_name)
    if vocabulary is None:
        raise ReviewError(review_id, f"no vocabulary {vocabulary_name!r} in the standards pack (it has: "
                                     f"{', '.join(sorted(hub.pack.vocabularies))})")
    concept = vocabulary.concept(code)
    if concept is not None:
        state = f"outdated (replaced by {concept.replaced_by!r})" if concept.outdated else "a code of it"
        raise ReviewError(review_id, f"{code!r} is already {state} in {vocabulary_name} {vocabulary.version}")
    _code_shape(vocabulary, code, review_id)
    if _path(hub, vocabulary_name, code).exists():
        raise ReviewError(review_id, f"{code!r} is already proposed and waits for a steward: twinhub review show "
                                     f"{review_id}")
    if broader is not None and broader not in vocabulary.codes:
        raise ReviewError(review_id, f"--broader {broader!r} is not a current code of {vocabulary_name}")
    _labels(vocabulary, labels, synonyms, review_id)
    _reason(reason, "propose-code", review_id)
    item = CodeProposal(vocabulary_name, code, dict(labels), tuple(synonyms), broader, department, reason, who, _now())
    path = _path(hub, vocabulary_name, code)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**item.concept(), "vocabulary": vocabulary_name, "department": department,
                                    "reason": reason, "proposed_by": who, "proposed_at": item.proposed_at},
                                   allow_unicode=True, sort_keys=False), encoding="utf-8")
    _decided(hub, item.id, "proposed", f"{department}: {reason}", who, item.proposed_at, department=department)
    return item


def _load(path: pathlib.Path) -> CodeProposal:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return CodeProposal(str(data["vocabulary"]), str(data["code"]), dict(data.get("labels") or {}),
                        tuple(data.get("synonyms") or ()), data.get("broader"), str(data["department"]),
                        str(data.get("reason") or ""), str(data.get("proposed_by") or ""),
                        str(data.get("proposed_at") or ""))


def pending(hub: Hub) -> list[CodeProposal]:
    return [_load(p) for p in sorted(_folder(hub).glob("*.yaml"))]


def get(hub: Hub, review_id: str) -> CodeProposal:
    vocabulary, _, code = review_id.removeprefix(PREFIX).partition(".")
    path = _path(hub, vocabulary, code)
    if not (vocabulary and code) or not path.is_file() or path.parent != _folder(hub):
        known = ", ".join(p.id for p in pending(hub)) or "none"
        raise ReviewError(review_id, f"no pending code proposal {review_id!r}; pending: {known} (twinhub review list)")
    return _load(path)


def _overlay_path(hub: Hub, vocabulary: str) -> pathlib.Path:
    return hub.home / OVERLAY / f"{vocabulary}.yaml"


def accept(hub: Hub, review_id: str, reason: str) -> tuple[CodeProposal, str]:
    """Add the proposed code to the hub's overlay; returns the proposal and the vocabulary's new version."""
    with _locked(hub):
        return _accept(hub, review_id, reason)


def _accept(hub: Hub, review_id: str, reason: str) -> tuple[CodeProposal, str]:
    who = audit.current_actor()
    check_steward(hub, who, review_id)
    item = get(hub, review_id)
    _reason(reason, "approve", review_id)
    pack = Hub.pack.func(hub)  # read afresh under the lock: another steward may have accepted a code meanwhile
    vocabulary = pack.vocabulary(item.vocabulary)
    if vocabulary.concept(item.code) is not None:  # the pack gained it since: nothing to add
        raise ReviewError(review_id, f"{item.code!r} is a code of {item.vocabulary} {vocabulary.version} already; "
                                     f"reject the proposal: twinhub review reject {review_id} --reason ...")
    target = _overlay_path(hub, item.vocabulary)
    data = yaml.safe_load(target.read_text(encoding="utf-8")) if target.is_file() else {}
    when = _now()
    version = _next_version(vocabulary)
    concept = {**item.concept(), "department": item.department, "proposed_by": item.proposed_by,
               "accepted_by": who, "accepted_at": when, "reason": reason}
    data = {"vocabulary": item.vocabulary, "version": version, "concepts": [*(data.get("concepts") or []), concept]}
    header = (f"# Codes accepted into vocabulary {item.vocabulary} by this hub's stewards (twinhub review approve "
              "code:...).\n# The standards pack loads them over its own vocabulary; do not edit by hand.\n")
    _write_checked(target, header + yaml.safe_dump(data, allow_unicode=True, sort_keys=False), pack.vocabularies)
    _path(hub, item.vocabulary, item.code).unlink()
    _decided(hub, item.id, "accepted", reason, who, when, department=item.department, proposed_by=item.proposed_by,
             version=version)
    return item, version


def _next_version(vocabulary: Vocabulary) -> str:
    from twinhub.standards.pack import bump_minor

    return bump_minor(vocabulary.version)


def _write_checked(target: pathlib.Path, text: str, vocabularies: dict[str, Vocabulary]) -> None:
    """Write the overlay only if the pack loads it (a broken file would stop every run)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        load_additions(tmp, vocabularies)
    except StandardsError as exc:
        tmp.unlink()
        raise ReviewError(str(target), str(exc)) from None
    tmp.replace(target)


def reject(hub: Hub, review_id: str, reason: str) -> CodeProposal:
    with _locked(hub):
        return _reject(hub, review_id, reason)


def _reject(hub: Hub, review_id: str, reason: str) -> CodeProposal:
    who = audit.current_actor()
    check_steward(hub, who, review_id)
    item = get(hub, review_id)
    _reason(reason, "reject", review_id)
    _path(hub, item.vocabulary, item.code).unlink()
    _decided(hub, item.id, "rejected", reason, who, _now(), department=item.department, proposed_by=item.proposed_by)
    return item


def history(hub: Hub, review_id: str | None = None) -> list[dict]:
    """The code proposals' audit trail (proposed, accepted, rejected), oldest first."""
    return [r for r in decisions(hub, review_id) if is_code_id(r["dataset"])]
