"""Governance commands: steward review of registrations, consumers' grants, queries as a consumer.

    twinhub review list | show ID | approve ID --reason ... | reject ID --reason ...
    twinhub grants list [--consumer C] [--dataset D]
    twinhub grants add CONSUMER DATASET --until 2027-06-30 [--level internal|sensitive|restricted]
    twinhub grants renew CONSUMER DATASET --until 2028-06-30
    twinhub grants revoke CONSUMER DATASET

Every decision and every refusal is written to the audit log (``catalog.audit``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from twinhub.cli import output
from twinhub.cli.consumers import audit, city_today, departments, derived_inputs, grants, refused, review, tables
from twinhub.cli.options import format_option, open_hub, reload_ui
from twinhub.hub import review_codes
from twinhub.hub.home import Hub
from twinhub.standards.tiers import CLASSIFICATIONS

if TYPE_CHECKING:  # the catalog's modules load duckdb and sqlglot: imported when a command runs
    from twinhub.catalog.grants import Grant

LEVELS = CLASSIFICATIONS[1:]  # what a grant may allow; public data needs no grant
reason_option = click.option("--reason", required=True, help="Why: recorded with your decision and audited.")


def _governed(action: str):
    """Run a grants or review command; a refusal is audited, then shown as one line (exit 2)."""
    def decorate(command):
        def wrapper(ctx: click.Context, *args, **kwargs):
            try:
                return command(ctx, *args, **kwargs)
            except (grants.AccessError, review.ReviewError) as exc:
                refused(open_hub(ctx), action, " ".join(_argv(ctx)), str(exc), ctx.params.get("dataset"),
                        ctx.params.get("consumer"))
                raise  # a user error: one line, exit 2 (twinhub/errors.py)
        wrapper.__name__, wrapper.__doc__ = command.__name__, command.__doc__
        return wrapper
    return decorate


def _argv(ctx: click.Context) -> list[str]:
    """The command as typed: arguments in their order, then options as ``--name value``."""
    words = [ctx.command_path]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or param.name == "fmt":
            continue
        words += [str(value)] if isinstance(param, click.Argument) else [f"--{param.name}", str(value)]
    return words


# --------------------------------------------------------------------------- review


@click.group("review")
def review_group() -> None:
    """Steward review of sensitive and restricted registrations."""


@review_group.command("list")
@format_option
@click.pass_context
def review_list(ctx: click.Context, fmt: str) -> None:
    """Registrations waiting for a steward, and datasets whose tier the privacy scan raised (kind scan)."""
    hub = open_hub(ctx)
    rows = [[p.id, p.manifest.title, p.tier, "; ".join(p.reasons), "change" if p.replaces else "new",
             p.submitted_by, p.submitted_at] for p in review.pending(hub)]
    rows += [[r.id, r.title, r.tier, r.why, "scan", f"run {r.run_id}", r.found_at] for r in review.raised_by_scan(hub)]
    rows += [[c.id, " / ".join(c.labels.values()), "", f"new code of {c.vocabulary} for {c.department}: {c.reason}",
              "code", c.proposed_by, c.proposed_at] for c in review_codes.pending(hub)]
    click.echo(output.render(["dataset", "title", "tier", "why", "kind", "submitted_by", "submitted_at"], rows, fmt))


@review_group.command("show")
@click.argument("dataset")
@click.pass_context
@_governed("review")
def review_show(ctx: click.Context, dataset: str) -> None:
    """A pending registration (why it waits, and its manifest), or what the scan found in a dataset."""
    import yaml

    hub = open_hub(ctx)
    if review_codes.is_code_id(dataset):
        item = review_codes.get(hub, dataset)
        click.echo(f"{item.id}: a new code of vocabulary {item.vocabulary}, proposed by {item.proposed_by} for "
                   f"department {item.department} at {item.proposed_at}\n  why: {item.reason}")
        click.echo("\n" + yaml.safe_dump(item.concept(), allow_unicode=True, sort_keys=False).rstrip())
        return
    if not review.pending_path(hub, dataset).is_file() and (raised := review.raised(hub, dataset)):
        click.echo(f"{raised.id}: {raised.tier} (declared {raised.declared}), {raised.why}")
        click.echo(f"  found by run {raised.run_id} at {raised.found_at}; queries already read it as {raised.tier}")
        click.echo(f"  declare the columns in its manifest (columns.<field>: personal_data, protect; or personal_data: "
                   f"none), or acknowledge: twinhub review approve {raised.id} --reason \"...\"")
        return
    item, manifest = review.show(hub, dataset)
    click.echo(f"{item.id}: {item.tier}, submitted by {item.submitted_by} at {item.submitted_at}")
    for reason in item.reasons:
        click.echo(f"  needs review: {reason}")
    if item.replaces:
        click.echo("  the approved version keeps running until you decide")
    click.echo("\n" + yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False).rstrip())


@review_group.command("approve")
@click.argument("dataset")
@reason_option
@click.pass_context
@_governed("review")
def review_approve(ctx: click.Context, dataset: str, reason: str) -> None:
    """Approve DATASET's registration (it joins the registry and runs), acknowledge the scan's raise of its tier,
    or accept a proposed code (code:VOCABULARY.CODE: published in the vocabulary's next version)."""
    hub = open_hub(ctx)
    if review_codes.is_code_id(dataset):
        item, version = review_codes.accept(hub, dataset, reason)
        click.echo(f"accepted {item.code} into {item.vocabulary} {version} (proposed by {item.proposed_by} for "
                   f"{item.department}); datasets may map onto it from now on")
        return
    if not review.pending_path(hub, dataset).is_file() and review.raised(hub, dataset):
        seen = review.acknowledge(hub, dataset, reason)
        click.echo(f"acknowledged: {seen.id} stays {seen.tier} as the scan found ({'; '.join(seen.findings)}); "
                   "declare the columns in its manifest to make it lasting")
        return
    item = review.approve(hub, dataset, reason)
    click.echo(f"approved {item.id} ({item.tier}); it runs from now on: twinhub run {item.id}")
    reload_ui(hub)


@review_group.command("reject")
@click.argument("dataset")
@reason_option
@click.pass_context
@_governed("review")
def review_reject(ctx: click.Context, dataset: str, reason: str) -> None:
    """Reject DATASET's registration: it is discarded (an approved version keeps running); or a proposed code."""
    if review_codes.is_code_id(dataset):
        code = review_codes.reject(open_hub(ctx), dataset, reason)
        click.echo(f"rejected {code.id}: {code.code} is not a code of {code.vocabulary}")
        return
    item = review.reject(open_hub(ctx), dataset, reason)
    kept = "; the approved version keeps running" if item.replaces else ""
    click.echo(f"rejected {item.id}{kept}")


def _label_pairs(values: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for value in values:
        lang, sep, text = value.partition("=")
        if not sep:
            raise review.ReviewError("--label", f"{value!r}: write LANG=TEXT, e.g. --label zh=缆车轨道")
        labels[lang.strip()] = text.strip()
    return labels


@review_group.command("propose-code")
@click.argument("vocabulary")
@click.argument("code")
@click.option("--department", required=True, help="The department proposing it (you must be one of its accounts).")
@click.option("--label", "labels", multiple=True, help="LANG=TEXT, e.g. en=\"Cable tram\" zh=缆车轨道 (repeatable).")
@click.option("--synonym", "synonyms", multiple=True, help="Another name data may use for it (repeatable).")
@click.option("--broader", help="The code it is a kind of.")
@reason_option
@click.pass_context
@_governed("review")
def review_propose_code(ctx: click.Context, vocabulary: str, code: str, department: str, labels: tuple[str, ...],
                        synonyms: tuple[str, ...], broader: str | None, reason: str) -> None:
    """Propose CODE for VOCABULARY on behalf of your department; a steward accepts or rejects it."""
    item = review_codes.propose(open_hub(ctx), vocabulary, code, department, _label_pairs(labels), synonyms, broader,
                                reason)
    click.echo(f"proposed {item.id}; it is no code until a steward accepts it: twinhub review approve {item.id} "
               "--reason ...")


@review_group.command("codes")
@format_option
@click.pass_context
def review_codes_history(ctx: click.Context, fmt: str) -> None:
    """Every code proposal and decision: who proposed, for which department, who accepted or rejected, why."""
    rows = [[r["dataset"], r["decision"], r.get("department"), r["by"], r["at"], r.get("version"), r["reason"]]
            for r in review_codes.history(open_hub(ctx))]
    click.echo(output.render(["proposal", "decision", "department", "by", "at", "version", "reason"], rows, fmt))


# --------------------------------------------------------------------------- grants


@click.group("grants")
def grants_group() -> None:
    """Consumers' grants: which department or user may read which dataset, up to which tier, until when."""


def _dataset(hub: Hub, dataset: str) -> str:
    from twinhub.hub.registry import registered

    known = {r.id for r in registered(hub)} | set(tables(hub)) | set(derived_inputs(hub, []))
    known |= {p.id for p in review.pending(hub)}  # a grant may be ready when the steward approves it
    if dataset not in known:
        hint = grants.did_you_mean(dataset, known)
        raise grants.AccessError(f"unknown dataset {dataset!r}{hint}: grants are given on registered datasets "
                                 "(pending review too), city.<standard> layers and derived.<name> datasets")
    return dataset


def _future(until: str, hub: Hub) -> dt.date:
    day = grants.parse_until(until)
    if day < city_today(hub):
        raise grants.AccessError(f"--until {day} is already past: a grant runs until a day from today on")
    return day


@grants_group.command("list")
@click.option("--consumer", help="Only this consumer's grants.")
@click.option("--dataset", help="Only grants on this dataset.")
@format_option
@click.pass_context
@_governed("grant-list")
def grants_list(ctx: click.Context, consumer: str | None, dataset: str | None, fmt: str) -> None:
    """Grants, with whether each is active or expired today."""
    hub = open_hub(ctx)
    today = city_today(hub)
    found = grants.list_grants(hub.lake, consumer, dataset)
    if not found:  # a misspelt name would look like "no grants": say so
        if consumer:
            grants.parse_consumer(consumer, departments(hub))
        if dataset:
            _dataset(hub, dataset)
    rows = [[g.consumer, g.dataset, g.level, g.until.isoformat(), "active" if g.active(today) else "EXPIRED",
             g.granted_by, g.granted_at, g.reason] for g in found]
    click.echo(output.render(["consumer", "dataset", "level", "until", "state", "granted_by", "granted_at",
                              "reason"], rows, fmt))


@grants_group.command("add")
@click.argument("consumer")
@click.argument("dataset")
@click.option("--until", required=True, help="The last day the grant is valid (YYYY-MM-DD).")
@click.option("--level", default="internal", show_default=True, type=click.Choice(LEVELS),
              help="The highest column tier read in clear; above it, protected columns are read protected.")
@click.option("--reason", help="Why (recorded with the grant).")
@click.pass_context
@_governed("grant-add")
def grants_add(ctx: click.Context, consumer: str, dataset: str, until: str, level: str, reason: str | None) -> None:
    """Let CONSUMER (a department, or user:NAME) read DATASET until a day."""
    hub = open_hub(ctx)
    who = grants.parse_consumer(consumer, departments(hub))
    grant = grants.Grant(who.name, _dataset(hub, dataset), grants.check_level(level), _future(until, hub),
                         audit.current_actor(), _now(), reason)
    replaced = grants.save_grant(hub.lake, grant)
    _audit_grant(hub, "grant-add", grant, f"{grant.level} until {grant.until}")
    click.echo(f"{'replaced' if replaced else 'granted'}: {who.name} reads {grant.dataset} up to {grant.level} "
               f"until {grant.until}")


@grants_group.command("renew")
@click.argument("consumer")
@click.argument("dataset")
@click.option("--until", required=True, help="The new last day (YYYY-MM-DD).")
@click.pass_context
@_governed("grant-renew")
def grants_renew(ctx: click.Context, consumer: str, dataset: str, until: str) -> None:
    """Extend CONSUMER's grant on DATASET (an expired one becomes active again)."""
    hub = open_hub(ctx)
    existing = grants.list_grants(hub.lake, consumer, dataset)
    if not existing:
        raise grants.AccessError(f"{consumer} has no grant on {dataset} to renew: give one with "
                          f"twinhub grants add {consumer} {dataset} --until YYYY-MM-DD")
    grant = grants.Grant(**{**existing[0].__dict__, "until": _future(until, hub), "granted_by": audit.current_actor(),
                            "granted_at": _now()})
    grants.save_grant(hub.lake, grant)
    _audit_grant(hub, "grant-renew", grant, f"until {grant.until} (was {existing[0].until})")
    click.echo(f"renewed: {grant.consumer} reads {grant.dataset} up to {grant.level} until {grant.until}")


@grants_group.command("revoke")
@click.argument("consumer")
@click.argument("dataset")
@click.pass_context
@_governed("grant-revoke")
def grants_revoke(ctx: click.Context, consumer: str, dataset: str) -> None:
    """Withdraw CONSUMER's grant on DATASET."""
    hub = open_hub(ctx)
    grant = grants.delete_grant(hub.lake, consumer, dataset)
    _audit_grant(hub, "grant-revoke", grant, "revoked")
    click.echo(f"revoked: {grant.consumer} no longer reads {grant.dataset} beyond its public columns")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _audit_grant(hub: Hub, action: str, grant: Grant, what: str) -> None:
    consumer = grants.Consumer(grant.consumer)
    audit.record(hub.lake, audit.AuditEntry(action=action, statement=f"{grant.consumer} {grant.dataset}: {what}",
                                            tables=[grant.dataset], department=consumer.department,
                                            consumer=grant.consumer))


def register(main: click.Group) -> None:
    main.add_command(review_group)
    main.add_command(grants_group)
