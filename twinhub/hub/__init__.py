"""The hub: its home and typed configuration, manifests, the registry with review, governance,
and the run of one dataset (stage, audit, publish). Below the CLI and orchestration, above the catalog."""
