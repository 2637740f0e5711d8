"""Steward review of sensitive and restricted registrations.

Public and internal registrations are approved at once. A registration whose
tier (declared, or raised by its columns) is sensitive or restricted waits in
``<home>/review/pending/<department>.<dataset>.yaml`` until a steward approves
it (it then becomes the registry entry) or rejects it (it is discarded), each
with a reason. A pending registration is not in the registry: it is not run,
scheduled or shown in Dagster. Re-registering an approved dataset with another
tier, other fields or other column policies goes back to review, and the
approved version keeps running until the steward decides; lowering the tier
of an approved sensitive or restricted dataset is reviewed too.

Datasets whose served columns the privacy scan raised (undeclared personal data) are
listed for the steward too (:func:`raised_by_scan`) until acknowledged (:func:`acknowledge`,
``review approve``) or declared in the manifest.

Decisions are appended to ``<home>/review/decisions.jsonl`` (who: the OS user, never ``TWINHUB_USER``;
when; the reason) and written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from dataclasses import dataclass

import yaml

from twinhub.catalog import audit
from twinhub.hub.home import Hub, HubError
from twinhub.hub.manifest import Manifest, parse_manifest
from twinhub.hub.registry import META_KEY, entry_path, pending_path, registered, review_dir, write_entry
from twinhub.standards.tiers import highest

REVIEWED_TIERS = ("sensitive", "restricted")
REVIEW_KEY = "review"  # pending files carry this beside the manifest: who submitted it, when, why


class ReviewError(HubError):
    """An unknown review id, a missing reason: refused with what to do."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Pending:
    manifest: Manifest
    path: pathlib.Path
    tier: str
    reasons: list[str]
    submitted_by: str
    submitted_at: str
    replaces: bool  # an approved version of the dataset is registered and keeps running meanwhile

    @property
    def id(self) -> str:
        return self.manifest.id


def effective_tier(hub: Hub, manifest: Manifest) -> str:
    """The manifest's tier: its classification, raised by its columns' (twinhub/protection.py)."""
    try:
        from twinhub.hub.protection import declared_tier
    except ImportError:  # a twinhub without column tiers
        return manifest.classification
    return declared_tier(manifest, hub.pack.standard(manifest.standard))


# What a steward reviews in a change to a sensitive or restricted dataset: every key that decides what is
# read (source), how it maps to published columns (fields, columns), who may see it (classification) and what
# is published openly (public_variant). Anything else (title, description, schedule, steward, quality,
# labels) applies at once.
REVIEWED_KEYS = ("source", "fields", "columns", "classification", "public_variant")


def review_reasons(hub: Hub, manifest: Manifest, approved: Manifest | None) -> list[str]:
    """Why ``manifest`` needs a steward's review before it runs ([]: approve at once).

    A change to an approved dataset is reviewed when the dataset is sensitive or restricted before or
    after it: as declared, or as served (the privacy scan may have raised it)."""
    tier = effective_tier(hub, manifest)
    if approved is None:
        return [f"classified {tier}" + _raised(manifest, tier)] if tier in REVIEWED_TIERS else []
    before = highest([effective_tier(hub, approved), served_tier(hub, approved.id) or "public"])
    if tier not in REVIEWED_TIERS and before not in REVIEWED_TIERS:
        return []
    reasons = []
    if tier != effective_tier(hub, approved):
        reasons.append(f"tier changes from {effective_tier(hub, approved)} to {tier}" + _raised(manifest, tier))
    for key in REVIEWED_KEYS:
        old, new = _reviewed(approved, key), _reviewed(manifest, key)
        if old != new:
            reasons.append(_CHANGE.get(key, f"its {key} changes: ")
                           + (_changed(old, new) if key != "columns" else "").rstrip(": "))
    return reasons


_CHANGE = {"fields": "its fields change: ", "columns": "its column policies (columns:) change"}


def _reviewed(manifest: Manifest, key: str) -> dict:
    """The value of a reviewed key as a mapping (a missing public_variant is {})."""
    if key == "columns":
        return _columns(manifest)
    value = getattr(manifest, key)
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True)
    return value if isinstance(value, dict) else {} if value is None else {key: value}


def served_tier(hub: Hub, dataset_id: str) -> str | None:
    """The tier the catalog serves ``dataset_id`` with (raised by the scan, if it was); None if unpublished."""
    if not hub.lake.exists():
        return None
    con = hub.lake.connect(read_only=True)
    try:
        row = con.execute("SELECT classification FROM catalog.datasets WHERE dataset = ?", [dataset_id]).fetchone()
    finally:
        con.close()
    return row[0] if row else None


def _raised(manifest: Manifest, tier: str) -> str:
    raised = [n for n, c in _columns(manifest).items() if c.get("classification") == tier]
    return f" (columns {', '.join(raised)})" if raised and manifest.classification != tier else ""


def _columns(manifest: Manifest) -> dict:
    columns = getattr(manifest, "columns", None) or {}
    return {k: (v.model_dump(exclude_none=True) if hasattr(v, "model_dump") else v) for k, v in columns.items()}


def _changed(before: dict, after: dict) -> str:
    keys = sorted(set(before) | set(after))
    return ", ".join(f"{k} {before.get(k)!r} -> {after.get(k)!r}" for k in keys if before.get(k) != after.get(k))



def submit(hub: Hub, data: dict, manifest: Manifest, reasons: list[str], replaces: bool) -> Pending:
    """Store a registration for review (replacing an earlier pending one of the same dataset)."""
    path = pending_path(hub, manifest.id)
    who, when = audit.current_actor(), _now()
    tier = effective_tier(hub, manifest)
    stored = dict(data, **{REVIEW_KEY: {"tier": tier, "reasons": reasons, "by": who, "at": when, "replaces": replaces}})
    write_entry(path, stored)
    _decided(hub, manifest.id, "submitted", "; ".join(reasons), who, when)
    return Pending(manifest, path, tier, reasons, who, when, replaces)


def withdraw(hub: Hub, dataset_id: str, why: str) -> bool:
    """Discard a pending registration superseded by one approved at once; True if there was one."""
    path = pending_path(hub, dataset_id)
    if not path.exists():
        return False
    path.unlink()
    _decided(hub, dataset_id, "superseded", why, audit.current_actor(), _now())
    return True


def pending(hub: Hub) -> list[Pending]:
    return [_load(p) for p in sorted((review_dir(hub) / "pending").glob("*.yaml"))]


def show(hub: Hub, dataset_id: str) -> tuple[Pending, dict]:
    """A pending registration and its manifest as submitted."""
    path = _existing(hub, dataset_id)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return _load(path), {k: v for k, v in data.items() if k not in (META_KEY, REVIEW_KEY)}


def approve(hub: Hub, dataset_id: str, reason: str) -> Pending:
    """Make the pending registration the registry entry of its dataset."""
    item = _load(_existing(hub, dataset_id))
    _reason(reason, "approve", dataset_id)
    data = yaml.safe_load(item.path.read_text(encoding="utf-8"))
    decision = data.pop(REVIEW_KEY)
    who, when = audit.current_actor(), _now()
    data[META_KEY] = dict(data.get(META_KEY, {}), approved_by=who, approved_at=when, reason=reason,
                          tier=decision.get("tier"))
    write_entry(entry_path(hub, item.id), data)
    item.path.unlink()
    _decided(hub, dataset_id, "approved", reason, who, when)
    return item


def reject(hub: Hub, dataset_id: str, reason: str) -> Pending:
    """Discard the pending registration (an approved version, if any, keeps running)."""
    if not pending_path(hub, dataset_id).is_file() and (found := raised(hub, dataset_id)):
        raise ReviewError(dataset_id, f"nothing to reject: no registration is pending, its {found.why}; declare the "
                                      f"columns in its manifest (personal_data: none if they are not personal data) "
                                      f"or acknowledge it: twinhub review approve {dataset_id} --reason \"...\"")
    item = _load(_existing(hub, dataset_id))
    _reason(reason, "reject", dataset_id)
    item.path.unlink()
    _decided(hub, dataset_id, "rejected", reason, audit.current_actor(), _now())
    return item


def decisions(hub: Hub, dataset_id: str | None = None) -> list[dict]:
    path = review_dir(hub) / "decisions.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if dataset_id in (None, r["dataset"])]


@dataclass(frozen=True)
class Raised:
    """A registered dataset whose served version has columns the privacy scan raised (undeclared personal data)."""

    id: str
    title: str
    declared: str
    tier: str  # the served version's
    findings: list[str]  # "column address mobile in 15 values"
    run_id: str
    found_at: str
    held: str = ""  # the key of a version held for a steward (columns declared personal_data: none)

    @property
    def key(self) -> str:
        """What a steward acknowledges: the tier and which columns hold what (not the counts, which change)."""
        return self.held or scan_key(self.tier, self.findings)

    @property
    def why(self) -> str:
        if self.held:
            return "version held: declared personal_data: none but the scan found " + "; ".join(self.findings)
        return "tier raised by scan: " + "; ".join(self.findings)


def scan_key(tier: str, findings: list[str]) -> str:
    return f"{tier}: " + "; ".join(f.split(" in ", 1)[0] for f in findings)


def acknowledged(hub: Hub, dataset_id: str, key: str) -> bool:
    """Whether a steward's latest acknowledgement of ``dataset_id`` is of exactly ``key``."""
    keys = [r.get("key") for r in decisions(hub, dataset_id) if r["decision"] == "acknowledged"]
    return bool(keys) and keys[-1] == key


def unacknowledged_raise(hub: Hub, manifest: Manifest, privacy: dict | None) -> str | None:
    """What the scan raised in a run (``privacy``: its details) that no steward has acknowledged; None if nothing."""
    from twinhub.hub.protection import declared_kinds

    findings = _findings(privacy or {}, declared_kinds(manifest.columns))
    if not findings or acknowledged(hub, manifest.id, scan_key((privacy or {}).get("classification", ""), findings)):
        return None
    return "; ".join(findings)


def _held_path(hub: Hub, dataset_id: str) -> pathlib.Path:
    return review_dir(hub) / "held" / f"{dataset_id}.json"


def hold(hub: Hub, dataset_id: str, held: dict[str, list[str]], privacy: dict) -> None:
    """Record a version held for a steward (listed by :func:`raised_by_scan` until acknowledged)."""
    from twinhub.hub.protection import held_key

    found = privacy["scan"]["found"]
    findings = [f"column {c} {k} in {found[c][k]['values']} values" for c, kinds in sorted(held.items()) for k in kinds]
    path = _held_path(hub, dataset_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": held_key(held), "findings": findings, "tier": privacy.get("classification"),
                                "at": _now()}, ensure_ascii=False), encoding="utf-8")
    _decided(hub, dataset_id, "held", "; ".join(findings), audit.current_actor(), _now())


def _held(hub: Hub) -> list[Raised]:
    out = []
    for path in sorted((review_dir(hub) / "held").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        dataset_id = path.name[:-len(".json")]
        if acknowledged(hub, dataset_id, data["key"]):
            continue
        entry = next((r for r in registered(hub) if r.id == dataset_id), None)
        title, declared = (entry.manifest.title, effective_tier(hub, entry.manifest)) if entry else (dataset_id, "")
        out.append(Raised(dataset_id, title, declared, data.get("tier") or "", data["findings"], "", data["at"],
                          held=data["key"]))
    return out


def raised_by_scan(hub: Hub) -> list[Raised]:
    """Registered datasets with columns the scan raised (undeclared personal data), not yet acknowledged.

    A steward acknowledges one with ``review approve`` (acknowledge); it is listed again when
    the scan raises other columns or another tier. Declaring the columns in the manifest ends it."""
    from twinhub.hub.protection import declared_kinds

    served = _served_privacy(hub)
    acks = {r["dataset"]: r.get("key") for r in decisions(hub) if r["decision"] == "acknowledged"}
    out = []
    for entry in registered(hub):
        tier, run_id, at, privacy = served.get(entry.id, (None, None, None, {}))
        findings = _findings(privacy, declared_kinds(entry.manifest.columns))
        if tier is None or not findings:  # nothing raised, or the manifest declares it now
            continue
        declared = effective_tier(hub, entry.manifest)
        item = Raised(entry.id, entry.manifest.title, declared, tier, findings, run_id, at)
        if acks.get(entry.id) != item.key:
            out.append(item)
    held = _held(hub)
    return [r for r in out if r.id not in {h.id for h in held}] + held


def raised(hub: Hub, dataset_id: str) -> Raised | None:
    return next((r for r in raised_by_scan(hub) if r.id == dataset_id), None)


def acknowledge(hub: Hub, dataset_id: str, reason: str) -> Raised:
    """Record that a steward has seen the scan's raise of ``dataset_id`` (it stays raised for queries)."""
    item = raised(hub, dataset_id)
    if item is None:
        _existing(hub, dataset_id)  # refuses, naming what is pending
    _reason(reason, "approve", dataset_id)
    _decided(hub, dataset_id, "acknowledged", reason, audit.current_actor(), _now(), key=item.key)
    if item.held:
        _held_path(hub, dataset_id).unlink(missing_ok=True)  # the next run publishes it
    return item


def _served_privacy(hub: Hub) -> dict[str, tuple]:
    """dataset -> (served tier, run id, finished at, the newest published run's privacy details)."""
    from twinhub.catalog.runs import latest_runs

    rows = [(d, r["served_tier"], r["run_id"], r["finished_at"], r["details"])
            for d, r in latest_runs(hub.lake, "published", details=True).items() if r["served_tier"] is not None]
    return {d: (tier, run, at.astimezone(dt.timezone.utc).isoformat(timespec="seconds") if at else "",
                (json.loads(details) if details else {}).get("privacy") or {})
            for d, tier, run, at, details in rows}


def _findings(privacy: dict, declared: dict[str, tuple[str, ...]]) -> list[str]:
    """The served version's columns raised by undeclared personal data the manifest still does not declare."""
    from twinhub.standards.tiers import covered

    found = (privacy.get("scan") or {}).get("found") or {}
    lines = []
    for name, column in (privacy.get("columns") or {}).items():
        for kind in column.get("raised_by") or []:
            if kind in covered(declared.get(name, ())):
                continue
            values = (found.get(name) or {}).get(kind, {}).get("values")
            lines.append(f"column {name} {kind} in {values} values" if values else f"column {name} {kind}")
    return lines


def _existing(hub: Hub, dataset_id: str) -> pathlib.Path:
    path = pending_path(hub, dataset_id)
    if not path.is_file():
        import difflib

        known = [p.id for p in pending(hub)]
        scanned = [r.id for r in raised_by_scan(hub)]  # a steward may approve (acknowledge) these too
        close = difflib.get_close_matches(dataset_id, known + scanned, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        if scanned:
            hint += f"raised by the scan: {', '.join(scanned)}; "
        raise ReviewError(dataset_id, f"no pending registration {dataset_id!r}; {hint}pending: "
                                      f"{', '.join(known) or 'none'} (twinhub review list)")
    return path


def _reason(reason: str | None, action: str, dataset_id: str) -> None:
    if not (reason or "").strip():
        raise ReviewError(dataset_id, f"give the reason for your decision: twinhub review {action} "
                                      f"{dataset_id} --reason \"...\"")


def _load(path: pathlib.Path) -> Pending:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    review = data.get(REVIEW_KEY, {})
    manifest = parse_manifest({k: v for k, v in data.items() if k not in (META_KEY, REVIEW_KEY)}, str(path))
    return Pending(manifest, path, review.get("tier", manifest.classification), list(review.get("reasons", [])),
                   review.get("by", ""), review.get("at", ""), bool(review.get("replaces")))


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _decided(hub: Hub, dataset_id: str, decision: str, reason: str, who: str, when: str, **extra) -> None:
    path = review_dir(hub) / "decisions.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {"dataset": dataset_id, "decision": decision, "reason": reason, "by": who, "at": when, **extra}
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    audit.record(hub.lake, audit.AuditEntry(action=f"review-{decision}", statement=f"{decision} {dataset_id}: {reason}",
                                            tables=[dataset_id], actor=who))
