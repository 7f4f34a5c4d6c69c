"""Why a start failed is a kind (``NotReady.kind``): the wait sets it, and the port retry and
the diagnosis decide on it, never on the words of the reason."""

from __future__ import annotations

import pytest

from pytest_flaskserve.lifecycle import diagnose
from pytest_flaskserve.lifecycle.ports import free_port
from pytest_flaskserve.lifecycle.readiness import NotReady, NotReadyKind, wait_until_serving
from pytest_flaskserve.lifecycle.supervisor import retry_on_new_port


def _failure(kind: NotReadyKind, reason: str = "", *, exit_code: int | None = None,
             log: str = "") -> diagnose.Failure:
    return diagnose.Failure(server="gunicorn", production=True, exit_code=exit_code, kind=kind,
                            reason=reason, log=log, timeout=3.0)


def test_an_exit_before_serving_is_exited() -> None:
    with pytest.raises(NotReady) as info:
        wait_until_serving("127.0.0.1", free_port(), "/", poll_exit=lambda: 3, timeout=5)
    assert info.value.kind is NotReadyKind.EXITED
    assert info.value.exited and info.value.exit_code == 3


def test_no_answer_before_the_deadline_is_a_timeout() -> None:
    with pytest.raises(NotReady) as info:
        wait_until_serving("127.0.0.1", free_port(), "/", poll_exit=lambda: None, timeout=0.2)
    assert info.value.kind is NotReadyKind.TIMEOUT
    assert not info.value.exited and info.value.exit_code is None


def test_fail_fast_evidence_keeps_its_kind() -> None:
    with pytest.raises(NotReady) as info:
        wait_until_serving("127.0.0.1", free_port(), "/", poll_exit=lambda: None, timeout=5,
                           fail_fast=lambda: (NotReadyKind.WRONG_PORT, "it listens elsewhere"))
    assert info.value.kind is NotReadyKind.WRONG_PORT
    assert info.value.reason == "it listens elsewhere"


@pytest.mark.parametrize(("kind", "log", "retried"), [
    (NotReadyKind.FOREIGN_PORT, "", True),
    (NotReadyKind.EXITED, "OSError: [Errno 98] Address already in use", True),
    # the app's own fixed port is taken: a new port for the server would not help
    (NotReadyKind.EXITED, "Running on http://127.0.0.1:5000\nAddress already in use", False),
    (NotReadyKind.EXITED, "ImportError: no module", False),
    (NotReadyKind.TIMEOUT, "", False),
    (NotReadyKind.WRONG_PORT, "", False),
])
def test_the_port_retry_reads_the_kind(kind: NotReadyKind, log: str, retried: bool) -> None:
    # the words never decide: every reason here says what a FOREIGN_PORT reason says
    nr = NotReady(kind, "another process already answers on 127.0.0.1:1; it is not ours",
                  exit_code=1 if kind is NotReadyKind.EXITED else None, seconds=0.1)
    assert retry_on_new_port(nr, log, 8000, runs_at_import=False) is retried


def test_a_port_in_use_is_not_retried_when_the_app_runs_at_import() -> None:
    nr = NotReady(NotReadyKind.EXITED, "exited before serving", exit_code=1, seconds=0.1)
    assert not retry_on_new_port(nr, "Address already in use", 8000, runs_at_import=True)


def test_the_timeout_cause_follows_the_kind_not_the_words() -> None:
    timed_out = diagnose.diagnose(_failure(NotReadyKind.TIMEOUT, "no answer"))
    assert any("never answered HTTP within 3 s" in c for c in timed_out)
    exited = diagnose.diagnose(_failure(NotReadyKind.EXITED, "no HTTP answer within 3 s",
                                        exit_code=1))
    assert not any("never answered HTTP" in c for c in exited)


def test_the_wrong_port_cause_follows_the_kind() -> None:
    causes = diagnose.diagnose(_failure(NotReadyKind.WRONG_PORT, "elsewhere"))
    assert any("serves on an address of its own" in c for c in causes)
    causes = diagnose.diagnose(_failure(NotReadyKind.TIMEOUT, "it announced port 9, listens on port 9"))
    assert not any("serves on an address of its own" in c for c in causes)


def test_the_foreign_port_cause_follows_the_kind() -> None:
    causes = diagnose.diagnose(_failure(NotReadyKind.FOREIGN_PORT, "taken"))
    assert any("another process answered on the port" in c for c in causes)
    causes = diagnose.diagnose(_failure(NotReadyKind.TIMEOUT, "another process already answers"))
    assert not any("another process answered on the port" in c for c in causes)


def test_every_kind_has_a_diagnosis() -> None:
    for kind in NotReadyKind:
        assert diagnose.diagnose(_failure(kind, "x")), kind



def test_an_exit_with_a_bare_message_names_the_message() -> None:
    """sys.exit("...") at import leaves one line and exit code 1: the message is the cause."""
    [cause] = diagnose.diagnose(_failure(NotReadyKind.EXITED, "exited", exit_code=1,
                                         log="config missing: DATABASE_URL\n"))
    assert "its last words were 'config missing: DATABASE_URL'" in cause
