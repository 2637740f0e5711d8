"""Guided registration: from a source nobody described to a proposed manifest and its dry run.

    proposal = propose(hub, "toilets.csv", department="facilities")
    write(proposal, pathlib.Path("toilets.yaml"), hub.pack)   # for the department to edit
    register_proposal(hub, proposal, path)             # or register it as it is (--yes)

A manifest written here and edited is dry-run again with :func:`rerun`.
"""

from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass, field

import yaml

from twinhub.guided import drafts as draft_files
from twinhub.guided.dryrun import DryRun, dry_run
from twinhub.guided.inspect import Profile, inspect_source
from twinhub.guided.manifest_text import manifest_text, relative_source
from twinhub.guided.propose import LabelDraft, StandardScore, choose_standard, label_drafts, suggested_entry
from twinhub.guided.source import GuidedError, source_spec
from twinhub.hub.crs_evidence import rank_with_evidence
from twinhub.hub.home import Hub
from twinhub.hub.manifest import Manifest, ManifestError, check_manifest, load_manifest, parse_manifest, source_policy
from twinhub.standards.pack import Crosswalk, CrosswalkEntry, StandardsError, StandardsPack


@dataclass
class Proposal:
    manifest: dict  # the proposed manifest's keys
    profile: Profile | None  # None when re-running an edited manifest
    scores: list[StandardScore]
    drafts: list[LabelDraft]
    dry_run: DryRun | None = None
    problems: dict[str, str] = field(default_factory=dict)  # what `register` would refuse, by manifest key
    command: str = "twinhub register"
    unfilled: dict[str, int] = field(default_factory=dict)  # per field: draft values still "?" (re-runs)

    @property
    def id(self) -> str:
        return f"{self.manifest['department']}.{self.manifest['dataset']}"

    def as_dict(self) -> dict:
        return {
            "dataset": self.id, "manifest": self.manifest,
            "profile": self.profile.as_dict() if self.profile else None,
            "standards": [s.as_dict() for s in self.scores],
            "labels": [d.as_dict() for d in self.drafts],
            "dry_run": self.dry_run.as_dict() if self.dry_run else None,
            "problems": self.problems,
        }


def identifier(text: str, default: str = "dataset") -> str:
    """A SQL-safe lower-case name from a file stem or table name.

    >>> identifier("adur-public-toilets"), identifier("public.Bins"), identifier("板橋停車場")
    ('adur_public_toilets', 'bins', 'dataset')
    """
    name = re.sub(r"[^a-z0-9]+", "_", text.rsplit(".", 1)[-1].casefold()).strip("_")
    name = re.sub(r"^[0-9_]+", "", name)[:63]
    return name or default


def _stem(source: dict) -> str:
    for key in ("table", "path", "url"):
        if source.get(key):
            text = str(source[key]).rstrip("/")
            return text.rsplit(".", 1)[-1] if key == "table" else pathlib.PurePosixPath(text.split("?")[0]).stem
    return "dataset"


def personal_columns(profile: Profile, chosen: StandardScore) -> dict[str, dict]:
    """``columns:`` declarations for mapped fields whose sample holds personal data (docs/governance.md)."""
    by_column = {m.column: m.field for m in chosen.mappings if m.column}
    return {by_column[column]: {"personal_data": sorted(kinds)}
            for column, kinds in profile.privacy.items() if column in by_column}


def _draft_crosswalks(dataset_id: str, drafts: list[LabelDraft]) -> dict[str, Crosswalk]:
    """The drafts' filled (suggested) entries as crosswalks, for the dry run."""
    return {
        d.field: Crosswalk(draft_files.draft_name(dataset_id, d.field), "0.1.0", d.vocabulary, "draft", tuple(
            CrosswalkEntry(e.value, e.code, "close") for e in d.entries if e.how == "suggested"))
        for d in drafts
    }


def _complete(drafts: list[LabelDraft], result: DryRun, pack) -> bool:
    """Add the values the dry run met beyond the sample; True if one of them got a code."""
    coded = False
    for d in drafts:
        seen = {e.value for e in d.entries}
        for value, rows in sorted(result.unmapped.get(d.field, {}).items(), key=lambda kv: -kv[1]):
            if value not in seen:
                entry = suggested_entry(value, rows, pack.vocabulary(d.vocabulary))
                d.entries.append(entry)
                coded |= entry.code is not None
            else:
                next(e for e in d.entries if e.value == value).rows = rows
    return coded


def _problems(hub: Hub, manifest: Manifest, base_dir: pathlib.Path | None) -> dict[str, str]:
    try:
        base = base_dir or pathlib.Path.cwd()
        check_manifest(manifest, hub.pack, base, manifest.id, source_policy(hub, manifest.department, base), hub.home)
    except ManifestError as exc:
        return exc.problems
    return {}


def propose(hub: Hub, source: str, department: str, dataset: str | None = None, standard: str | None = None,
            crs: str | None = None, title: str | None = None, command: str = "twinhub register") -> Proposal:
    """Inspect SOURCE, choose its standard, map its fields, draft its crosswalks and dry-run it."""
    profile = inspect_source(source_spec(source), hub, crs=crs)
    if profile.geometry_type and profile.crs.how == "none":
        where = ", ".join(profile.geometry_columns) or "the geometries"
        raise GuidedError(f"{profile.describe}: cannot tell the CRS of {where}: no known CRS puts them inside "
                          f"{hub.pack.city.name}; give --crs EPSG:<code> (the data's owner knows it)")
    scores = choose_standard(profile, hub.pack, standard)
    chosen = scores[0]
    _weigh_crs_evidence(hub, profile, chosen.fields)
    stem = _stem(profile.source)
    manifest = {
        "department": department, "dataset": dataset or identifier(stem),
        "title": title or re.sub(r"[_\-]+", " ", pathlib.PurePosixPath(stem).name).strip().capitalize() or "Dataset",
        "description": "", "standard": chosen.standard.name, "source": profile.source,
        "fields": chosen.fields, "labels": {}, "classification": "internal",
    }
    columns = personal_columns(profile, chosen)
    if columns:
        manifest["columns"] = columns
    if chosen.vocabularies:
        manifest["vocabularies"] = dict(chosen.vocabularies)
    drafts = label_drafts(chosen, profile, hub.pack)
    parsed = parse_manifest(manifest, f"the proposal for {source}")
    result = dry_run(hub, parsed, drafts=_draft_crosswalks(parsed.id, drafts))
    if _complete(drafts, result, hub.pack):  # values beyond the sample got codes: count them in
        result = dry_run(hub, parsed, drafts=_draft_crosswalks(parsed.id, drafts))
    return Proposal(manifest, profile, scores, drafts, result, _problems(hub, parsed, None), command)


def _weigh_crs_evidence(hub: Hub, profile: Profile, fields: dict) -> None:
    """A tie the coordinate ranges leave (WGS 84 / GCJ-02 / BD-09 all inside the city) broken by the hub's own
    evidence when it can be: the rows' names against published features, their district column against
    published district polygons, the city's landmarks (twinhub/hub/crs_evidence.py). The evidence is shown
    either way; the proposal's CRS changes only when it decides."""
    choice = profile.crs
    if choice.how != "detected" or choice.sure or profile.positions is None:
        return
    column = {f: c for f, c in fields.items() if isinstance(c, str) and c in profile.frame.columns}
    district = column.get("district") or (column.get("name") if "area_code" in column else None)
    found = rank_with_evidence(hub, *profile.positions,
                               profile.frame[column["name"]].to_numpy() if "name" in column else None,
                               profile.frame[district].to_numpy() if district else None)
    choice.evidence += found.message().splitlines()
    best = found.ranked[0] if found.ranked else None
    if found.decided and best is not None and best.swapped == choice.candidates[0].swapped:
        choice.crs, choice.decided_by = best.crs, list(found.decided_by)
        choice.candidates = found.ranked + [c for c in choice.candidates if c not in found.ranked]
        profile.source["crs"] = best.crs


def write(proposal: Proposal, path: pathlib.Path, pack: StandardsPack) -> list[pathlib.Path]:
    """Write the manifest and its crosswalk drafts beside it; returns the files written."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {**proposal.manifest, "source": relative_source(proposal.manifest["source"], path.parent)}
    path.write_text(manifest_text(manifest, proposal.profile, proposal.scores, proposal.drafts, proposal.command),
                    encoding="utf-8")
    written = [path]
    for d in proposal.drafts:
        target = draft_files.draft_path(path.parent, proposal.id, d.field)
        target.write_text(draft_files.draft_text(proposal.id, d, pack), encoding="utf-8")
        written.append(target)
    yaml.safe_load(path.read_text(encoding="utf-8"))  # what we wrote must read back
    return written


def rerun(hub: Hub, path: pathlib.Path) -> Proposal:
    """Dry-run an (edited) manifest with the crosswalk drafts beside it."""
    path = path.resolve()
    manifest = load_manifest(path)
    try:
        standard = hub.pack.standard(manifest.standard)
    except StandardsError as exc:
        raise GuidedError(f"{path}: standard: {exc}") from None
    found = draft_files.drafts_beside(path.parent, manifest.id, standard.vocabulary_fields, hub.pack)
    result = dry_run(hub, manifest, path.parent, {f: cw for f, (cw, _) in found.items()})
    data = manifest.model_dump(exclude_none=True)
    return Proposal(data, None, [], [], result, _problems(hub, manifest, path.parent),
                    unfilled={f: n for f, (_, n) in found.items()})


def install_drafts(hub: Hub, path: pathlib.Path, manifest: Manifest) -> list[pathlib.Path]:
    """Install the drafts beside manifest ``path`` into the hub home (their filled entries)."""
    standard = hub.pack.standard(manifest.standard)
    found = draft_files.drafts_beside(path.resolve().parent, manifest.id, standard.vocabulary_fields, hub.pack)
    return [p for cw, _ in found.values() if (p := draft_files.install(hub.home, cw, hub.pack)) is not None]
