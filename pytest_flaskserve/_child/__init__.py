"""Code that runs in another interpreter (a resolver child, a server, the watchdog).

The rule: modules here never import pytest or the pytest layer (``pytest_flaskserve.plugin``),
and import the rest of this package only on demand, because they run where pytest is not
wanted (a server, a watchdog that outlives pytest) and must start fast. Three such modules stay at the package's top level
because their names appear in server command lines and coverage configuration:
``_entry``, ``_traced_entry`` and ``_coverage_boot``.
"""
