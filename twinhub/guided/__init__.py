"""Guided registration: ``twinhub register SOURCE --department D`` for a source with no manifest yet.

source.py (what SOURCE is) -> inspect.py (profile, geometry, CRS candidates) ->
propose.py (standard, field mapping, label drafts) -> dryrun.py (the whole source
through the Conformer, nothing published) -> manifest_text.py / drafts.py (the
commented manifest and crosswalk drafts) -> command.py (the CLI). See docs/registering.md.
"""
