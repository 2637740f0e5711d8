"""The ``twinhub`` command line: the top layer. Commands parse options, call the layers below and
render what they return; no domain logic lives here."""
