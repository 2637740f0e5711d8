"""``twinhub serve``: the hub's published data as a live OGC API, under the hub's access rules.

Beside the CLI at the top of the layers: it reads the catalog (twinhub.catalog) and the hub's
registry (twinhub.hub) and never runs user SQL; what a request may see is decided per request by the
same access rule as ``twinhub query --as`` (catalog/features.py).
"""
