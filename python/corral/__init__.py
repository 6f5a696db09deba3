"""corral: a pre-fork HTTP server for Python WSGI applications, built to live
inside systemd.

The server itself is the compiled extension module ``corral._corral``; this
package only starts it. Run it as ``corral`` (the console script) or
``python -m corral``, with gunicorn's command-line flags.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("corral")
except _metadata.PackageNotFoundError:  # imported from a source tree
    __version__ = "unknown"
