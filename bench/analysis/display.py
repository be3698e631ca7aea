"""Stored text shown as data: never a terminal command, never rich markup, never a formula.

A results database may come from anyone (a colleague, a merged file, a hostile plugin's error
message), so every string it holds is treated as untrusted wherever it is printed or exported.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported when text is shown, never with this module
    from rich.text import Text

# C0 and C1 controls (ESC starts colour, cursor and OSC sequences: titles, hyperlinks, clipboard),
# DEL, and the bidirectional overrides that make text read differently from what it holds.
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + _BIDI + "]")
_CONTROL_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f" + _BIDI + "]")
# A spreadsheet reads a cell starting with one of these as a formula (OWASP: CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def plain(text: object, one_line: bool = False) -> str:
    """``text`` without control characters (tabs and newlines kept unless ``one_line``)."""
    text = str(text)
    pattern = _CONTROL_ONE_LINE if one_line else _CONTROL
    if pattern.search(text) is None:
        return text
    if one_line:
        text = text.replace("\t", " ").replace("\n", " ")
    return pattern.sub("", text)


def literal(text: object) -> Text:
    """A rich ``Text`` holding ``text`` literally: brackets are characters, not markup."""
    from rich.text import Text

    return Text(plain(text, one_line=True))


def markup_escape(text: object) -> str:
    """``text`` for a rich markup string: escaped, and without control characters."""
    from rich.markup import escape

    return escape(plain(text, one_line=True))


def csv_value(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text: strings that would start a formula get a
    leading apostrophe; numbers stay numbers."""
    if not isinstance(value, str):
        return value
    value = plain(value)
    # lstrip: spreadsheets skip leading blanks before looking for '='
    if value.startswith(FORMULA_START) or value.lstrip().startswith(FORMULA_START):
        return "'" + value
    return value
