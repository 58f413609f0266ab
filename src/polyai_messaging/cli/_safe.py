"""Text from the server, made safe for a terminal.

Whatever a server sends (a message, an agent's name, a suggestion, a queue name) reaches the
screen only through :func:`terminal_safe`: control characters that a terminal would obey (escape
sequences that set the window title or clear the screen, a bell, a carriage return that lets a
line overwrite another) are shown as visible symbols instead, and characters that cannot be
printed (lone surrogates) or that reorder text on screen (bidirectional overrides) become U+FFFD.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["json_safe", "terminal_safe"]

_REPLACEMENT: Final = "\ufffd"

# C0 controls but tab and newline, and DEL: shown as their Unicode control pictures (ESC -> ␛).
_C0: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# C1 controls, lone surrogates, and the bidirectional embeddings, overrides and isolates.
_UNPRINTABLE: Final = re.compile(r"[\x80-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
# What json.dumps leaves raw (it escapes the C0 controls only) that a terminal would act on.
_JSON_RAW: Final = re.compile(r"[\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    return "\u2421" if code == 0x7F else chr(0x2400 + code)


def terminal_safe(text: str, *, multiline: bool = True) -> str:
    """``text`` with nothing a terminal would act on: see the module docstring.

    Tabs are kept; newlines too when ``multiline`` (otherwise they become spaces, for a name or
    a title that must stay on its line).
    """
    text = _UNPRINTABLE.sub(_REPLACEMENT, _C0.sub(_picture, text))
    return text if multiline else text.replace("\n", " ")


def json_safe(document: str) -> str:
    """JSON text (as ``json.dumps`` writes it) with every character a terminal would act on,
    or could not print, written as a ``\\uXXXX`` escape: the same JSON value, safe to print.

    Such characters can only stand inside the document's strings, where an escape means the
    same character.
    """
    return _JSON_RAW.sub(lambda match: f"\\u{ord(match.group()):04x}", document)
