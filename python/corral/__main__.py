"""The ``corral`` command: hand the command line to the Rust core and exit
with its status, so the master and its workers run on this interpreter (the
virtualenv's, when corral is installed in one)."""

import os
import sys


def _core():
    try:
        from corral import _corral
    except ImportError as exc:
        # A wheel built for another interpreter, or a partial install: say
        # which Python runs and what is installed, in one line.
        here = os.path.dirname(os.path.abspath(__file__))
        built = sorted(n for n in os.listdir(here) if n.startswith("_corral"))
        found = ", ".join(built) or "no compiled module"
        sys.stderr.write(
            "error: corral's compiled core cannot be loaded by Python %d.%d (%s); "
            "installed: %s; reinstall corral with this interpreter "
            "(%s -m pip install --force-reinstall corral)\n"
            % (sys.version_info[0], sys.version_info[1], exc, found, sys.executable)
        )
        return None
    return _corral


def _relaunch_argv():
    """The command line a USR2 re-exec runs: this interpreter, then what
    followed it when the process started (the console script's path, or
    ``-m corral``), so the new master imports whatever is installed now."""
    orig = getattr(sys, "orig_argv", None)  # Python 3.10+
    if orig:
        return [sys.executable] + list(orig[1:])
    if sys.argv and sys.argv[0].endswith(os.path.join("corral", "__main__.py")):
        return [sys.executable, "-m", "corral"] + sys.argv[1:]
    return [sys.executable] + sys.argv


def main():
    core = _core()
    if core is None:
        return 1
    return core.run(sys.argv[1:], sys.executable, _relaunch_argv())


if __name__ == "__main__":
    sys.exit(main())
