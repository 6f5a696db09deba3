"""Fails at import: the server must exit 4 and name the missing module."""

import nope  # noqa: F401

app = None
