"""An application whose import fails, for the start-up failure tests."""

raise RuntimeError("corral-test: import exploded")
