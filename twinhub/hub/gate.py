"""The publish gate: what a run may publish of a dataset, by the governance rules (docs/governance.md).

Above protection (the rules) and review (the steward's decisions): protection never asks review.
"""

from __future__ import annotations

import dataclasses

from twinhub.hub import review
from twinhub.hub.protection import VersionHeld, declared_none_found, held_key, variant_floor


def governed_entry(hub, manifest, entry, privacy: dict | None):
    """The catalog entry a run may publish, by the governance rules (docs/governance.md):

    - a column declared ``personal_data: none`` where the scan found personal data holds the version
      (:class:`VersionHeld`) until a steward acknowledges exactly those findings;
    - the public variant is withheld while the scan raised a column no steward has acknowledged, and
      otherwise carries the city's floor of ``min_count``.
    """
    held = declared_none_found(manifest, privacy)
    if held and not review.acknowledged(hub, manifest.id, held_key(held)):
        review.hold(hub, manifest.id, held, privacy)
        found = privacy["scan"]["found"]
        what = "; ".join(f"{c}: " + ", ".join(f"{k} in {found[c][k]['values']} values (e.g. "
                                                f"{', '.join(found[c][k]['examples'])})" for k in kinds)
                         for c, kinds in held.items())
        raise VersionHeld(f"{manifest.id}: not published, held for a steward: columns declared personal_data: "
                          f"none hold personal data ({what}). Fix columns.<name>.personal_data in the manifest, or "
                          f"a steward confirms they are not personal data: twinhub review approve {manifest.id} "
                          f"--reason \"...\"")
    variant = entry.public_variant
    if variant:
        raised = review.unacknowledged_raise(hub, manifest, privacy)
        variant = ({"withheld": f"the privacy scan raised {raised} and no steward has acknowledged it "
                                f"(twinhub review list)"} if raised else
                   {**variant, "floor": variant_floor(hub.pack, hub.home)})
    return dataclasses.replace(entry, public_variant=variant)
