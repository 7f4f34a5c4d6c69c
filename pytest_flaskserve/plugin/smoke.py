"""The smoke suite's pytest items: ``smoke::CHECK[SERVER]`` for every check and selected
server, so a failure names the check and the server. The checks themselves, and the
state the items share (each server started once, the URL map read once, responses
cached for the cross-server comparison), are in :mod:`pytest_flaskserve.parity.smoke`.
Items start what they need themselves, so any selection (``-k``, xdist) still works.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from pytest_flaskserve import servers
from pytest_flaskserve.errors import UsageError
from pytest_flaskserve.lifecycle.supervisor import ServerHandle
from pytest_flaskserve.parity.smoke import CHECKS, RUNNERS, Check
from pytest_flaskserve.parity.smoke_state import (
    SkipCheck,
    SmokeFailure,
    SmokePlan,
    SmokeSettings,
    SmokeState,
)
from pytest_flaskserve.plugin import selection
from pytest_flaskserve.plugin.fixtures import HANDLES_KEY
from pytest_flaskserve.plugin.options import SMOKE_WORKERS
from pytest_flaskserve.plugin.session import Runtime
from pytest_flaskserve.servers import ServerOptions

SMOKE_KEY = pytest.StashKey[SmokeState]()


def make_plan(rt: Runtime, session: pytest.Session) -> SmokePlan:
    """Resolve the app and choose servers the way the plugin does for parametrized tests."""
    if not rt.settings.app:
        raise UsageError("--flask-smoke needs an app: pass --flask-app=module:app, set "
                         "flask_app in the ini file, or set FLASK_APP")
    app = rt.resolve(rt.spec_for(session))
    names, explicit = selection.choose(None, rt.settings.servers, rt.settings.proxy)
    skip: dict[str, str] = {}
    for name in names:
        why = selection.left_out_reason(name, app, explicit)
        if why:
            skip[name] = why
    runnable = [n for n in names if n not in skip]
    dev = [n for n in runnable if not servers.get(n).production]
    baseline = dev[0] if dev else (runnable[0] if runnable else None)
    return SmokePlan(app=app, servers=tuple(names), baseline=baseline, skip=skip,
                     tls=rt.settings.tls)


def make_state(config: pytest.Config, rt: Runtime, plan: SmokePlan) -> SmokeState:
    s = rt.settings

    def start(server: str, options: ServerOptions) -> ServerHandle:
        _ensure_log_dir(config, rt)
        return rt.start(server, plan.app, options)

    return SmokeState(plan, start=start, base_options=lambda server: rt.options_for(None, server),
                      settings=SmokeSettings(
                          workers=s.smoke_workers or s.workers or SMOKE_WORKERS,
                          exclude=s.smoke_exclude, ready_path=s.ready_path,
                          stop_timeout=s.stop_timeout, startup_timeout=s.startup_timeout,
                          load_dotenv=s.load_dotenv))


def _ensure_log_dir(config: pytest.Config, rt: Runtime) -> None:
    if rt.log_dir is not None:
        return
    # The same numbered directory the _flaskserve_runtime fixture would create, under
    # pytest's basetemp, so logs are kept and pruned by pytest's own rules.
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:
        raise SmokeFailure("the smoke suite keeps server logs under pytest's temporary "
                           "directory: do not disable the tmpdir plugin (-p no:tmpdir)")
    rt.log_dir = Path(factory.mktemp("flaskserve", numbered=True))


class SmokeItem(pytest.Item):
    """One check on one server: ``smoke::routes[gunicorn]``."""

    def __init__(self, *, server: str, check: Check, **kw: Any) -> None:
        super().__init__(**kw)
        self.server = server
        self.check = check
        #: the matrix cell this item fills (row, server)
        self.flaskserve_cell = (f"smoke::{check.name}", server)
        self.extra_keyword_matches.update({server, check.name, "flask_smoke"})

    def _used(self, handle: ServerHandle) -> None:
        self.stash.setdefault(HANDLES_KEY, []).append(handle)

    def runtest(self) -> None:
        state = self.config.stash[SMOKE_KEY]
        try:
            notes = RUNNERS[self.check.name](state, self._used, self.server)
        except SkipCheck as exc:
            pytest.skip(str(exc))
        if notes:
            self.add_report_section("call", "flaskserve smoke", "\n".join(notes))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> Any:
        if isinstance(excinfo.value, SmokeFailure):
            return f"smoke check {self.check.name!r} ({self.check.summary}):\n{excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        # A line, not None: pytest reports a skip marker's skip at the item's location
        # and asserts it has a line (an INTERNALERROR otherwise).
        return self.path, 0, f"flaskserve smoke: {self.check.summary} [{self.server}]"


class SmokeCollector(pytest.Collector):
    """The ``smoke`` node: no file behind it, one item per (check, server)."""

    def __init__(self, *, plan: SmokePlan, xdist: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.plan = plan
        self.xdist = xdist

    def collect(self) -> Iterable[SmokeItem]:
        items = []
        for server in self.plan.servers:
            production = servers.get(server).production
            for check in CHECKS:
                if check.production_only and not production:
                    continue
                behind_proxy = servers.get(server).behind is not None
                if (check.proxied_only and not behind_proxy) or (check.bare_only and behind_proxy):
                    continue
                if check.tls_only and not self.plan.tls:
                    continue
                if check.compares and server == self.plan.baseline:
                    continue
                if check.compares and self.plan.baseline is None:
                    continue
                item = SmokeItem.from_parent(self, name=f"{check.name}[{server}]",
                                             server=server, check=check)
                if server in self.plan.skip:
                    item.add_marker(pytest.mark.skip(reason=self.plan.skip[server]))
                if self.xdist:
                    # with --dist loadgroup, one worker runs all checks of one server
                    item.add_marker(pytest.mark.xdist_group(name=f"flaskserve-smoke-{server}"))
                items.append(item)
        return items


def collect_items(session: pytest.Session, rt: Runtime) -> list[SmokeItem]:
    """The smoke items of this run, first in the list (before -k/-m deselection)."""
    plan = make_plan(rt, session)
    session.config.stash[SMOKE_KEY] = make_state(session.config, rt, plan)
    collector = SmokeCollector.from_parent(
        session, name="smoke", nodeid="smoke", plan=plan,
        xdist=session.config.pluginmanager.hasplugin("xdist"))
    return list(collector.collect())


def close(config: pytest.Config) -> None:
    """Stop the smoke servers the stop checks did not."""
    state = config.stash.get(SMOKE_KEY, None)
    if state is not None:
        state.close()
