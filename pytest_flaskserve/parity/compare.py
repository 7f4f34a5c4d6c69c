"""``flask_parity``: one request, sent to every server, answers compared side by side.

What must be equal is what the app decides: status, headers and body. What a server
decides is ignored by default (``Date``, ``Server`` and the framing headers
``Connection``, ``Keep-Alive``, ``Transfer-Encoding``), configurable with
``--flask-parity-ignore-headers``. Each server's own address (``127.0.0.1:PORT``) is
replaced by ``{host}`` in headers and bodies, so ``url_for(..., _external=True)`` and
``Location`` compare equal when only the port differs.

A server with several worker processes gets consecutive requests on its workers in turn
(see :mod:`workers`), the way a load balancer spreads them, so state kept in one
worker's memory shows up on the next request instead of now and then.
"""

from __future__ import annotations

import json as _json
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pytest_flaskserve.errors import hide_own_errors
from pytest_flaskserve.lifecycle.supervisor import ServerHandle
from pytest_flaskserve.parity.wire import Body, Exchange, send
from pytest_flaskserve.parity.workers import PinError, RoundRobin, send_to

__tracebackhide__ = hide_own_errors  # our frames stay out of reports of our errors

DEFAULT_IGNORED_HEADERS: tuple[str, ...] = (
    "Date", "Server", "Connection", "Keep-Alive", "Transfer-Encoding",
)
FIELDS = ("status", "headers", "body")
#: list-valued headers whose order carries no meaning (Werkzeug builds Allow from a set,
#: so its order changes from one process to the next): compared as sorted lists
UNORDERED_HEADERS = frozenset({"allow", "vary", "access-control-allow-methods",
                               "access-control-allow-headers", "access-control-expose-headers"})
_CELL = 30


class ParityError(AssertionError):
    """Servers answered the same request differently; the message is the table."""

    def __init__(self, result: ParityResult) -> None:
        super().__init__(result.table())
        self.result = result


@dataclass(frozen=True)
class Difference:
    """One compared field (``status``, ``body``, ``header Location``) and its values."""

    field: str
    values: Mapping[str, str]


@dataclass
class ParityResult:
    """What every server answered to one request, and where they disagree."""

    method: str
    path: str
    exchanges: dict[str, Exchange]
    differences: list[Difference]
    compared: tuple[str, ...]
    ignored: tuple[str, ...]
    workers: dict[str, int | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return not self.differences

    @property
    def agree(self) -> bool:
        return not self.differences

    def __getitem__(self, server: str) -> Exchange:
        return self.exchanges[server]

    @property
    def servers(self) -> list[str]:
        return list(self.exchanges)

    def table(self) -> str:
        """The side-by-side table a failure shows (differing fields marked ``*``)."""
        names = self.servers
        verdict = (f"answered differently on {len(self.differences)} field(s)"
                   if self.differences else "answered the same")
        lines = [f"flask_parity: {self.method} {self.path} {verdict} "
                 f"(compared {', '.join(self.compared)}; ignored headers: "
                 f"{', '.join(self.ignored) or 'none'})"]
        rows: list[tuple[str, str, list[str]]] = []
        differing = {d.field for d in self.differences}
        if "status" not in differing:
            rows.append((" ", "status", [self.exchanges[n].describe() for n in names]))
        full: list[str] = []
        for diff in self.differences:
            cells = [diff.values.get(n, "") for n in names]
            if diff.field == "body":
                cells = _aligned(cells)
            rows.append(("*", diff.field, cells))
            if any(len(c) > _CELL for c in cells):
                full += [f"  {diff.field} on {n}: {diff.values.get(n, '')[:400]}" for n in names]
        if any(self.workers.values()):
            rows.append((" ", "worker pid", [str(self.workers.get(n) or "-") for n in names]))
        label_w = max(len(r[1]) for r in rows + [(" ", "", [])])
        widths = [min(_CELL, max([len(n)] + [len(r[2][i]) for r in rows])) for i, n in
                  enumerate(names)]
        head = " " * (label_w + 4) + " | ".join(n.ljust(w) for n, w in zip(names, widths, strict=False))
        lines.append(head.rstrip())
        for mark, label, cells in rows:
            shown = [_clip(c, w).ljust(w) for c, w in zip(cells, widths, strict=False)]
            lines.append(f"{mark} {label.ljust(label_w)}  " + " | ".join(shown).rstrip())
        if full:
            lines.append("full values:")
            lines += full
        return "\n".join(lines)

    def raise_for_differences(self) -> ParityResult:
        __tracebackhide__ = True
        if self.differences:
            raise ParityError(self)
        return self


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _aligned(cells: list[str]) -> list[str]:
    """Start long bodies a little before the first place they differ."""
    if not cells or all(len(c) <= _CELL for c in cells):
        return cells
    first = next((i for i, chars in enumerate(zip(*cells, strict=False)) if len(set(chars)) > 1),
                 min(len(c) for c in cells))
    start = max(0, first - 8)
    return [("..." + c[start:]) if start else c for c in cells]


def _localize(text: str, netloc: str) -> str:
    return text.replace(netloc, "{host}")


def _netloc(handle: ServerHandle) -> str:
    return handle.url.split("://", 1)[1]


def compare(
    exchanges: Mapping[str, Exchange],
    netlocs: Mapping[str, str],
    *,
    ignore_headers: Iterable[str],
    fields: Sequence[str] = FIELDS,
    normalize: Callable[[bytes], Any] | None = None,
) -> list[Difference]:
    """The fields on which the servers' answers differ (empty when they agree)."""
    names = list(exchanges)
    diffs: list[Difference] = []
    if names and all(exchanges[n].status is None for n in names):
        # every server failing alike is not agreement: nothing was compared
        return [Difference("no server answered",
                           {n: exchanges[n].describe() for n in names})]
    if "status" in fields:
        values = {n: exchanges[n].describe() for n in names}
        # the code (or why there is none), not the reason phrase: that is the server's
        codes = {n: exchanges[n].status or exchanges[n].error for n in names}
        if len(set(codes.values())) > 1:
            diffs.append(Difference("status", values))
    if "headers" in fields:
        ignored = {h.lower() for h in ignore_headers}
        seen: dict[str, str] = {}
        for n in names:
            for key, _ in exchanges[n].headers:
                if key.lower() not in ignored:
                    seen.setdefault(key.lower(), key)
        for low, key in sorted(seen.items()):
            values = {}
            for n in names:
                got = exchanges[n].header_values(low)
                if low in UNORDERED_HEADERS:
                    got = [", ".join(sorted(t.strip() for v in got for t in v.split(",")))]
                values[n] = _localize(", ".join(got), netlocs[n]) if got else "(absent)"
            if len(set(values.values())) > 1:
                diffs.append(Difference(f"header {key}", values))
    if "body" in fields:
        shown: dict[str, str] = {}
        keys: dict[str, Any] = {}
        for n in names:
            body = _localize(exchanges[n].body.decode("latin-1"), netlocs[n]).encode("latin-1")
            if normalize is not None and exchanges[n].status is not None:
                try:
                    keys[n] = normalize(body)
                except Exception as exc:  # noqa: BLE001 - shown in the table
                    keys[n] = f"normalize raised {type(exc).__name__}: {exc}"
                shown[n] = repr(keys[n])
            else:
                keys[n] = body
                shown[n] = repr(body)[2:-1] if body else "(empty)"
        if len({repr(v) for v in keys.values()}) > 1:
            diffs.append(Difference("body", shown))
    return diffs


class Parity:
    """Send one request to every server and compare: ``flask_parity.get("/")``.

    Every call returns a :class:`ParityResult`; with ``check=True`` (the default) a
    difference raises :class:`ParityError`, whose message is the side-by-side table.
    """

    def __init__(self, handles: Mapping[str, ServerHandle], *,
                 ignore_headers: Sequence[str] = DEFAULT_IGNORED_HEADERS,
                 timeout: float = 10.0, spread_workers: bool = True) -> None:
        self.handles = dict(handles)
        self.ignore_headers = tuple(ignore_headers)
        self.timeout = timeout
        self.spread_workers = spread_workers
        self._robins = {name: RoundRobin(h) for name, h in self.handles.items()}
        self.history: list[ParityResult] = []

    @property
    def servers(self) -> list[str]:
        return list(self.handles)

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        json: Any = None,
        ignore_headers: Iterable[str] = (),
        compare_fields: Sequence[str] = FIELDS,
        normalize: Callable[[bytes], Any] | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> ParityResult:
        """Send ``method path`` to every server at once and compare the answers.

        ``body``: bytes/str (Content-Length) or an iterable of bytes (sent chunked, one
        chunk per item, to every server); ``json``: an object sent as JSON.
        ``ignore_headers`` adds to the configured list for this request;
        ``compare_fields`` picks among ``status``, ``headers``, ``body``; ``normalize``
        maps a body to the value compared (e.g. ``lambda b: json.loads(b)["count"]``).
        """
        __tracebackhide__ = True
        unknown = set(compare_fields) - set(FIELDS)
        if unknown:
            raise ValueError(f"compare_fields {sorted(unknown)} unknown; use {FIELDS}")
        hdrs = dict(headers or {})
        if json is not None:
            body = _json.dumps(json).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if body is not None and not isinstance(body, (bytes, bytearray, str)):
            body = [bytes(c) for c in body]  # one list, replayed to every server
        wait = timeout or self.timeout

        def one(name: str) -> tuple[Exchange, int | None]:
            handle = self.handles[name]
            turn = self._robins[name].next_worker() if self.spread_workers else None
            if turn is None:
                return send(handle.host, handle.port, method, path, headers=hdrs,
                            body=body, timeout=wait, ca_path=handle.ca_path), None
            worker, workers = turn
            try:
                return send_to(handle, worker, method, path, headers=hdrs, body=body,
                               timeout=wait, workers=workers), worker
            except PinError as exc:
                return Exchange(method=method.upper(), path=path, status=None,
                                error=f"not sent: {exc}"), worker

        with ThreadPoolExecutor(max_workers=max(1, len(self.handles))) as pool:
            answers = dict(zip(self.handles, pool.map(one, self.handles), strict=False))
        exchanges = {n: a[0] for n, a in answers.items()}
        ignored = tuple(dict.fromkeys([*self.ignore_headers, *ignore_headers]))
        diffs = compare(exchanges, {n: _netloc(h) for n, h in self.handles.items()},
                        ignore_headers=ignored, fields=compare_fields, normalize=normalize)
        result = ParityResult(method=method.upper(), path=path, exchanges=exchanges,
                              differences=diffs, compared=tuple(compare_fields),
                              ignored=ignored, workers={n: a[1] for n, a in answers.items()})
        self.history.append(result)
        if check:
            result.raise_for_differences()
        return result

    def get(self, path: str, **kw: Any) -> ParityResult:
        __tracebackhide__ = True
        return self.request("GET", path, **kw)

    def head(self, path: str, **kw: Any) -> ParityResult:
        __tracebackhide__ = True
        return self.request("HEAD", path, **kw)

    def post(self, path: str, **kw: Any) -> ParityResult:
        __tracebackhide__ = True
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> ParityResult:
        __tracebackhide__ = True
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> ParityResult:
        __tracebackhide__ = True
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> ParityResult:
        __tracebackhide__ = True
        return self.request("DELETE", path, **kw)
