"""Registering a manifest: check it against its standard and its real source, then store it in the
registry, or hand it to a steward's review (twinhub.hub.review) when its tier or change asks for one."""

from __future__ import annotations

import datetime as dt
import logging
import pathlib

from twinhub.catalog import audit
from twinhub.hub import review
from twinhub.hub.home import Hub
from twinhub.hub.manifest import Manifest, ManifestError, check_manifest, load_manifest, source_policy
from twinhub.hub.registry import META_KEY, Registered, entry_path, load_entry, write_entry
from twinhub.standards.pack import StandardsError


def register(hub: Hub, manifest_path: pathlib.Path) -> tuple[Registered, bool]:
    """Check and register a manifest; returns the entry and whether it replaced one.

    A sensitive or restricted registration (or a reviewed change to an approved one) is
    stored for review instead (twinhub/review.py): the entry's ``review`` says why.
    A refused manifest is written to the audit log (action ``register``, status ``refused``).
    """
    try:
        return _register(hub, manifest_path)
    except ManifestError as exc:
        exc = _pending_codes_said(hub, exc)
        _audit_refusal(hub, manifest_path, exc)
        raise exc from None


def _pending_codes_said(hub: Hub, exc: ManifestError) -> ManifestError:
    """A code refused because it is still proposed says so: waiting for a steward, not misspelt."""
    from twinhub.hub import review_codes

    waiting = {f"{p.code!r} is not a code of vocabulary {p.vocabulary}": p for p in review_codes.pending(hub)}
    if not waiting:
        return exc
    problems = dict(exc.problems)
    for key, message in problems.items():
        for said, p in waiting.items():
            if said in message:
                problems[key] = (f"{message} (proposed by {p.proposed_by} for {p.department}, waiting for a steward: "
                                 f"twinhub review show {p.id})")
    return ManifestError(exc.where, problems) if problems != exc.problems else exc


def _audit_refusal(hub: Hub, manifest_path: pathlib.Path, exc: ManifestError) -> None:
    try:
        audit.record(hub.lake, audit.AuditEntry(action="register", statement=f"register {manifest_path}",
                                                status="refused", message=str(exc)))
    except Exception as failed:  # the refusal reaches the user even if the log cannot be written
        logging.getLogger(__name__).warning("could not audit the refused registration of %s: %s", manifest_path, failed)


def _names_secrets(source: dict) -> bool:
    return bool(source.get("password_env") or source.get("headers_env") or source.get("params_env"))


def _awaits_review(hub: Hub, manifest: Manifest) -> bool:
    """Whether registering ``manifest`` would wait for a steward (an unknown standard: check_manifest says so)."""
    target = entry_path(hub, manifest.id)
    try:
        return bool(review.review_reasons(hub, manifest, load_entry(target).manifest if target.exists() else None))
    except StandardsError:
        return False


def _register(hub: Hub, manifest_path: pathlib.Path) -> tuple[Registered, bool]:
    manifest_path = manifest_path.resolve()
    manifest = load_manifest(manifest_path)
    rules = source_policy(hub, manifest.department, manifest_path.parent)
    # a registration that waits for review is never contacted with credentials: its source is checked
    # (keys, files, secrets' names, hosts) without connecting, and read first by the run after approval
    deferred = _names_secrets(manifest.source) and _awaits_review(hub, manifest)
    connector = check_manifest(manifest, hub.pack, manifest_path.parent, str(manifest_path), rules, hub.home,
                               contact=not deferred)
    source = dict(manifest.source, path=str(connector.path)) if connector.path else dict(manifest.source)
    stored = manifest.model_copy(update={"source": source})
    target = entry_path(hub, manifest.id)
    replaced = target.exists()
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    data = stored.model_dump(exclude_none=True)
    data[META_KEY] = {"from": str(manifest_path), "at": now}
    reasons = review.review_reasons(hub, stored, load_entry(target).manifest if replaced else None)
    if reasons:
        item = review.submit(hub, data, stored, reasons, replaces=replaced)
        return Registered(stored, item.path, str(manifest_path), now, review=reasons), replaced
    review.withdraw(hub, stored.id, "registered again without needing review")
    write_entry(target, data)
    return Registered(stored, target, str(manifest_path), now), replaced
