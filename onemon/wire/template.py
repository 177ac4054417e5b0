"""OpenNebula's template language (reference §1.9): parse payload text, write it back.

The grammar follows ``src/parsers/template_parser.l`` and ``template_syntax.y``:

- ``NAME = VALUE`` attributes, names ``[A-Za-z0-9_]+`` upper-cased; a repeated name becomes a
  list in order. Attributes need no separator between them (flex reads token by token).
- ``NAME =`` followed by a newline (or the end of the text) is an empty value.
- A value is a double-quoted string, which may span lines and in which only ``\\"`` is unescaped,
  or a bare word of anything except ``=``, ``#``, blank, newline, ``,``, ``[`` and ``]`` that does
  not start with ``"``. As upstream, ``\\"`` is unescaped in bare words too.
- A closing quote is the first ``"`` not preceded by a backslash; when there is none, flex's
  longest match makes the last escaped quote the closing one, and so does this parser.
- Vectors ``NAME = [ K = V, K2 = "v 2" ]`` (blanks and newlines around commas and brackets, keys
  upper-cased, the first of two equal keys wins as in ``std::map::insert``), ``NAME = [ ]`` empty.
- Blank lines and ``#`` comments (to the end of the line) are skipped between tokens.
- Any value containing ``]]>`` is rejected.

Deliberate differences, all on input upstream mishandles: characters flex would silently echo
and skip between tokens (e.g. a CR of a CRLF line after a quoted value) are errors here; a
comment or ``NAME =`` on the last line needs no final newline; a quoted value followed directly
by more text (``"a"b``, which flex reads as the bare word ``"a"b``) is an error.

The parser is one compiled regular expression match per attribute or vector element; the error
paths re-scan piecewise only to say where and what went wrong.
"""

from __future__ import annotations

import re
from typing import Any, Final

from onemon.wire.errors import TemplateError, WireError
from onemon.wire.model import Template, add

MAX_TEMPLATE_SIZE: Final = 4 * 1024 * 1024
"""Default bound on the text given to :func:`parse`, in characters."""

_SKIP_RE: Final = r"(?:[ \t\n]|#[^\n]*+)*+"
_NAME_RE: Final = r"([A-Za-z0-9_]+)"
_EQUAL_RE: Final = r"[ \t]*+=[ \t]*+"
# Atomic: the group finds flex's longest match once, and is never shortened afterwards.
_QUOTED_RE: Final = r'(?>"((?:[^"\\]++|\\"|\\)*)")'
_BARE_RE: Final = r'([^=# \t\n,\[\]"][^=# \t\n,\[\]]*+)'

_ATTRIBUTE: Final = re.compile(
    _SKIP_RE + _NAME_RE + _EQUAL_RE + r"(?:(\n|\Z)|" + _QUOTED_RE + "|" + _BARE_RE + r"|(\[))"
)
_ELEMENT: Final = re.compile(
    _SKIP_RE
    + _NAME_RE
    + _EQUAL_RE
    + "(?:"
    + _QUOTED_RE
    + "|"
    + _BARE_RE
    + ")"
    + _SKIP_RE
    + r"([,\]])"
)
_EMPTY_VECTOR: Final = re.compile(_SKIP_RE + r"\]")
_SKIP: Final = re.compile(_SKIP_RE)
_NAME: Final = re.compile(_NAME_RE)
_VALUE: Final = re.compile(_QUOTED_RE + "|" + _BARE_RE)
_BARE_WORD: Final = re.compile(_BARE_RE)

_CDATA_END: Final = "]]>"
_ESCAPED_QUOTE: Final = '\\"'


def parse(text: str, max_size: int = MAX_TEMPLATE_SIZE) -> Template:
    """Parse template text into a Template; raise TemplateError (line, column) or too_large."""
    if len(text) > max_size:
        raise WireError("too_large", f"template of {len(text)} characters, limit {max_size}")
    template: Template = {}
    match_attribute = _ATTRIBUTE.match
    end = len(text)
    pos = 0
    while True:
        found = match_attribute(text, pos)
        if found is None:
            pos = _skip(text, pos)
            if pos == end:
                return template
            raise _attribute_error(text, pos)
        name = found.group(1).upper()
        if found.group(5) is not None:
            vector, pos = _parse_vector(text, found.end(), name)
            add(template, name, vector)
        elif found.group(2) is not None:
            add(template, name, "")
            pos = found.end()
        else:
            add(template, name, _scalar_value(text, found, 3, name))
            pos = found.end()


def write(template: Template) -> str:
    """Write a Template as text that :func:`parse` reads back; raise TemplateError if it cannot."""
    lines: list[str] = []
    names: set[str] = set()
    for name, value in template.items():
        upper = _checked_name(name, names, "attribute")
        if not isinstance(value, list):
            lines.append(_write_attribute(upper, value))
            continue
        if not value:
            raise TemplateError(f"{upper}: an empty list of values cannot be written")
        for item in value:
            if isinstance(item, list):
                raise TemplateError(f"{upper}: nested lists cannot be written")
            lines.append(_write_attribute(upper, item))
    return "".join(lines)


# --------------------------------------------------------------------------- parsing


def _skip(text: str, pos: int) -> int:
    """Position after the blanks, newlines and comments at ``pos``."""
    found = _SKIP.match(text, pos)
    return found.end() if found else pos


def _parse_vector(text: str, pos: int, name: str) -> tuple[dict[str, str], int]:
    """Parse the elements of a vector whose ``[`` ends at ``pos``; return it and the end."""
    empty = _EMPTY_VECTOR.match(text, pos)
    if empty is not None:
        return {}, empty.end()
    vector: dict[str, str] = {}
    match_element = _ELEMENT.match
    while True:
        found = match_element(text, pos)
        if found is None:
            raise _element_error(text, pos, name)
        key = found.group(1).upper()
        if key not in vector:
            vector[key] = _scalar_value(text, found, 2, f"{name}/{key}")
        pos = found.end()
        if found.group(4) == "]":
            return vector, pos


def _scalar_value(text: str, found: re.Match[str], group: int, where: str) -> str:
    """The value of a match whose group ``group`` is a quoted value and ``group + 1`` a bare one."""
    quoted = found.group(group)
    if quoted is not None:
        if _CDATA_END in quoted:
            start = found.start(group) + quoted.index(_CDATA_END)
            raise _error(text, start, f"value of {where} contains ']]>', which OpenNebula rejects")
        return quoted.replace(_ESCAPED_QUOTE, '"') if "\\" in quoted else quoted
    bare: str = found.group(group + 1)
    return bare.replace(_ESCAPED_QUOTE, '"') if "\\" in bare else bare


def _blanks_end(text: str, pos: int) -> int:
    """Position after the blanks (spaces, tabs) at ``pos``."""
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _error(text: str, pos: int, message: str) -> TemplateError:
    """A TemplateError at character offset ``pos`` (1-based line and column)."""
    line = text.count("\n", 0, pos) + 1
    column = pos - text.rfind("\n", 0, pos)
    return TemplateError(message, line, column)


def _show(text: str, pos: int) -> str:
    """The character at ``pos`` for an error message."""
    return repr(text[pos]) if pos < len(text) else "end of text"


def _attribute_error(text: str, pos: int) -> TemplateError:
    """Explain why no attribute starts at ``pos`` (a non-blank position)."""
    name = _NAME.match(text, pos)
    if name is None:
        return _error(text, pos, f"expected an attribute name, found {_show(text, pos)}")
    equal = _blanks_end(text, name.end())
    if not text.startswith("=", equal):
        return _error(text, equal, f"expected '=' after {name.group()}, found {_show(text, equal)}")
    pos = _blanks_end(text, equal + 1)
    return _value_error(text, pos, name.group().upper())


def _value_error(text: str, pos: int, where: str) -> TemplateError:
    """Explain why no value starts at ``pos``."""
    if text.startswith('"', pos):
        return _error(text, pos, f"unterminated quoted value of {where}")
    if text.startswith("\n", pos) or pos == len(text):
        return _error(text, pos, f'empty value of {where}: inside a vector it must be written ""')
    return _error(text, pos, f"expected a value for {where}, found {_show(text, pos)}")


def _element_error(text: str, pos: int, vector: str) -> TemplateError:
    """Explain why no vector element of ``vector`` starts at ``pos``."""
    pos = _skip(text, pos)
    if pos == len(text):
        return _error(text, pos, f"unterminated vector {vector}: expected ']'")
    key = _NAME.match(text, pos)
    if key is None:
        return _error(text, pos, f"expected a key in vector {vector}, found {_show(text, pos)}")
    where = f"{vector}/{key.group().upper()}"
    equal = _blanks_end(text, key.end())
    if not text.startswith("=", equal):
        return _error(text, equal, f"expected '=' after {where}, found {_show(text, equal)}")
    pos = _blanks_end(text, equal + 1)
    value = _VALUE.match(text, pos)
    if value is None:
        return _value_error(text, pos, where)
    pos = _skip(text, value.end())
    if pos == len(text):
        return _error(text, pos, f"unterminated vector {vector}: expected ',' or ']'")
    return _error(text, pos, f"expected ',' or ']' after {where}, found {_show(text, pos)}")


# --------------------------------------------------------------------------- writing


def _checked_name(name: object, seen: set[str], what: str) -> str:
    """The upper-cased ``name``, checked to be a name and not to repeat one in ``seen``."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise TemplateError(f"{what} name {name!r} is not made of [A-Za-z0-9_]")
    upper = name.upper()
    if upper in seen:
        raise TemplateError(f"{what} name {name!r} repeats {upper} once upper-cased")
    seen.add(upper)
    return upper


def _write_attribute(name: str, value: Any) -> str:
    """One ``NAME = value`` line."""
    if isinstance(value, dict):
        return f"{name} = {_write_vector(name, value)}\n"
    return f"{name} = {_write_scalar(name, value)}\n"


def _write_vector(name: str, vector: dict[Any, Any]) -> str:
    """``[ K = "v", … ]`` for a dict of scalars."""
    if not vector:
        return "[ ]"
    keys: set[str] = set()
    parts: list[str] = []
    for key, value in vector.items():
        upper = _checked_name(key, keys, f"vector {name} key")
        where = f"{name}/{upper}"
        if isinstance(value, dict | list):
            kind = type(value).__name__
            raise TemplateError(f"{where}: a vector holds scalars only, not a {kind}")
        parts.append(f"{upper} = {_write_scalar(where, value)}")
    return "[ " + ", ".join(parts) + " ]"


def _write_scalar(where: str, value: Any) -> str:
    """A quoted value, or a bare word for a value ending in a backslash."""
    text = _scalar_text(where, value)
    if _CDATA_END in text:
        raise TemplateError(f"{where}: value contains ']]>', which OpenNebula rejects")
    if not text.endswith("\\"):
        return '"' + text.replace('"', _ESCAPED_QUOTE) + '"'
    if _BARE_WORD.fullmatch(text) is not None and _ESCAPED_QUOTE not in text:
        return text
    raise TemplateError(
        f"{where}: a value ending in a backslash can only be written as a bare word "
        "(no blanks, newlines, quotes or =#,[])"
    )


def _scalar_text(where: str, value: Any) -> str:
    """The text of a str, int or float value (floats with repr)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise TemplateError(f"{where}: booleans have no template form; write a string")
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(float(value))
    raise TemplateError(f"{where}: cannot write a {type(value).__name__}")
