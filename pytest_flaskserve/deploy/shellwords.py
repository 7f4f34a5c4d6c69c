"""Shell command lines split into words that remember where they were written.

A deployment command is run by ``/bin/sh -c`` as the platforms do, so it is rewritten in
place: only the words that set the listen address are replaced, everything else (quotes,
``$VARIABLES``, ``&&``) stays byte for byte as the user wrote it. ``shlex`` loses the
positions, hence this small splitter (POSIX quoting: ``'...'``, ``"..."``, backslash).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_flaskserve.errors import UsageError

#: control operators that end a simple command
_OPERATORS = ("&&", "||", ";;", ";", "&", "|", "(", ")")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Word:
    """One word: its value with the quotes removed (``$PORT`` is left as text) and its
    span in the command line; ``operator`` marks ``&&``, ``;``, ``|`` and the like."""

    value: str
    start: int
    end: int
    operator: bool = False


def split(line: str, where: str) -> list[Word]:
    """The words and operators of ``line``; an unterminated quote is a UsageError."""
    words: list[Word] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "#" and (i == 0 or line[i - 1].isspace()):
            break  # a comment runs to the end of the line
        op = next((o for o in _OPERATORS if line.startswith(o, i)), None)
        if op is not None:
            words.append(Word(op, i, i + len(op), operator=True))
            i += len(op)
            continue
        start, value = i, []
        while i < n and not line[i].isspace() and not any(line.startswith(o, i) for o in _OPERATORS):
            ch = line[i]
            if ch == "'":
                close = line.find("'", i + 1)
                if close == -1:
                    raise UsageError(f"{where}: unterminated ' quote in {line!r}; close it")
                value.append(line[i + 1:close])
                i = close + 1
            elif ch == '"':
                j = i + 1
                while j < n and line[j] != '"':
                    if line[j] == "\\" and j + 1 < n:
                        value.append(line[j + 1] if line[j + 1] in '"\\$`' else line[j:j + 2])
                        j += 2
                        continue
                    value.append(line[j])
                    j += 1
                if j >= n:
                    raise UsageError(f'{where}: unterminated " quote in {line!r}; close it')
                i = j + 1
            elif ch == "\\" and i + 1 < n:
                value.append(line[i + 1])
                i += 2
            else:
                value.append(ch)
                i += 1
        words.append(Word("".join(value), start, i))
    return words


def last_command(words: Sequence[Word]) -> tuple[int, int, bool]:
    """``(start, end)`` word indexes of the simple command that runs the server: the last
    one of the list (``cd src && gunicorn app:app``), and whether nothing but that command
    follows its start (so ``exec`` can be put in front of it without changing what runs).
    Leading ``VAR=value`` assignments and ``exec`` / ``env`` are not part of it."""
    end = len(words)
    while end and words[end - 1].operator and words[end - 1].value in (";", "&"):
        end -= 1
    start = end
    while start and not words[start - 1].operator:
        start -= 1
    trailing = all(w.value == ";" for w in words[end:])
    return start, end, trailing and (start == 0 or words[start - 1].value in ("&&", "||", ";"))


def is_assignment(word: str) -> bool:
    return bool(_ASSIGNMENT.match(word))


def command_words(words: Sequence[Word], start: int, end: int) -> int:
    """Index of the program word in ``words[start:end]``, past assignments, ``exec`` and
    ``env [VAR=value...]``."""
    i = start
    while i < end and (_ASSIGNMENT.match(words[i].value) or words[i].value in ("exec", "env")):
        i += 1
    return i


def render(line: str, words: Sequence[Word], splices: Sequence[tuple[int, int, Sequence[str]]]) -> str:
    """``line`` with ``words[a:b]`` replaced by new (quoted) words for each ``(a, b, new)``;
    ``a == b`` inserts before word ``a`` (``len(words)``: at the end)."""
    out, pos = [], 0
    for a, b, new in sorted(splices, key=lambda s: (s[0], s[1])):
        at = words[a].start if a < len(words) else len(line.rstrip())
        until = words[b - 1].end if b > a else at
        out.append(line[pos:at])
        text = " ".join(shlex.quote(w) for w in new)
        if b == a and text:  # an insertion: keep a space on both sides
            text = f" {text}" if a == len(words) else f"{text} "
        out.append(text)
        pos = until
    out.append(line[pos:])
    return "".join(out)
