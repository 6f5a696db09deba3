"""Runs one bjoern process: bjoern_serve.py MODULE:CALLABLE PORT"""

import importlib
import sys

import bjoern

module, _, name = sys.argv[1].partition(":")
app = getattr(importlib.import_module(module), name or "application")
bjoern.run(app, "127.0.0.1", int(sys.argv[2]))
