"""The OpenNebula template language: every construct of reference §1.9, errors, round trips."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onemon.wire.errors import TemplateError, WireError
from onemon.wire.template import parse, write

# Reference §1.8 (b): the MONITOR_HOST payload a KVM node sends.
MONITOR_HOST_TEXT = """\
HYPERVISOR=kvm
USEDMEMORY=2147156
FREEMEMORY=5831016
FREECPU=792
USEDCPU=8
NETRX=0
NETTX=0
HUGEPAGE = [ NODE_ID = "0", SIZE = "2048", FREE = "0" ]
HUGEPAGE = [ NODE_ID = "0", SIZE = "1048576", FREE = "0" ]
MEMORY_NODE = [ NODE_ID = "0", FREE = "173580", USED = "1086600" ]
"""


def test_monitor_host_example_parses_to_its_values() -> None:
    assert parse(MONITOR_HOST_TEXT) == {
        "HYPERVISOR": "kvm",
        "USEDMEMORY": "2147156",
        "FREEMEMORY": "5831016",
        "FREECPU": "792",
        "USEDCPU": "8",
        "NETRX": "0",
        "NETTX": "0",
        "HUGEPAGE": [
            {"NODE_ID": "0", "SIZE": "2048", "FREE": "0"},
            {"NODE_ID": "0", "SIZE": "1048576", "FREE": "0"},
        ],
        "MEMORY_NODE": {"NODE_ID": "0", "FREE": "173580", "USED": "1086600"},
    }


def test_state_vm_double_space_before_state_is_accepted() -> None:
    text = 'VM = [ ID="12", DEPLOY_ID="6c1e1565",  STATE="RUNNING" ]\n'
    assert parse(text) == {"VM": {"ID": "12", "DEPLOY_ID": "6c1e1565", "STATE": "RUNNING"}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A =\nB = 1\n", {"A": "", "B": "1"}),
        ("A=\n", {"A": ""}),
        ("A =   \t\n", {"A": ""}),
        ("A =", {"A": ""}),  # upstream wants the newline; a last line without one is harmless
        ('A = ""\n', {"A": ""}),
    ],
)
def test_empty_values(text: str, expected: dict[str, str]) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('A = "two words"', "two words"),
        ('A = "line one\nline two"', "line one\nline two"),
        ('A = "say \\"hi\\""', 'say "hi"'),
        ('A = "C:\\dir\\n"', "C:\\dir\\n"),  # only \" is an escape
        ('A = "a\\\\"b"', 'a\\"b'),  # \\" is a backslash then an escaped quote
        ('A = "x = [1, 2] # not a comment"', "x = [1, 2] # not a comment"),
        ('A = "ünïcödé ☃"', "ünïcödé ☃"),
        ('A = "tab\there"', "tab\there"),
    ],
)
def test_quoted_values(text: str, value: str) -> None:
    assert parse(text) == {"A": value}


def test_quoted_value_without_unescaped_close_ends_at_last_escaped_quote() -> None:
    # flex's longest match: "C:\" has no unescaped closing quote, so its \" closes it.
    assert parse('A = "C:\\"') == {"A": "C:\\"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("A = kvm", "kvm"),
        ("A = 1.5e3", "1.5e3"),
        ("A = /var/lib/one:x@y", "/var/lib/one:x@y"),
        ('A = ab"c', 'ab"c'),  # a quote inside a bare word is an ordinary character
        ('A = ab\\"c', 'ab"c'),  # upstream unescapes \" in bare words too
        ("A = C:\\", "C:\\"),
        ("A = ☃", "☃"),
        ("A = x\r", "x\r"),  # CR is not a blank for flex: it belongs to the word
    ],
)
def test_bare_values(text: str, value: str) -> None:
    assert parse(text) == {"A": value}


def test_bare_word_stops_at_separators() -> None:
    assert parse("A = one#two\nB = 2") == {"A": "one", "B": "2"}
    assert parse("V = [ A = x]") == {"V": {"A": "x"}}
    assert parse("V = [ A = x,B = y ]") == {"V": {"A": "x", "B": "y"}}


def test_vector_layouts() -> None:
    text = 'V = [\n  k1 = 1 ,\n  K2="v 2"\n  ,K3 = x\n]\nW=[A=1,B=2]\n'
    assert parse(text) == {
        "V": {"K1": "1", "K2": "v 2", "K3": "x"},
        "W": {"A": "1", "B": "2"},
    }


@pytest.mark.parametrize("text", ["V = [ ]", "V = []", "V = [\n]", "V = [ # nothing\n ]"])
def test_empty_vector(text: str) -> None:
    assert parse(text) == {"V": {}}


def test_vector_with_multiline_quoted_value_and_comments() -> None:
    text = 'V = [ # open\n  A = "x\ny", # first\n  B = 2 # last\n]\n'
    assert parse(text) == {"V": {"A": "x\ny", "B": "2"}}


def test_repeated_vector_key_keeps_the_first_as_std_map_insert() -> None:
    assert parse("V = [ A = 1, a = 2 ]") == {"V": {"A": "1"}}


def test_repeated_names_become_a_list_in_order() -> None:
    text = 'DS = [ ID = 0 ]\nX = 1\nDS = [ ID = 1 ]\nds = "two"\n'
    assert parse(text) == {"DS": [{"ID": "0"}, {"ID": "1"}, "two"], "X": "1"}


def test_names_are_upper_cased() -> None:
    assert parse("hostname = node1\nCpu_Speed = 2400") == {
        "HOSTNAME": "node1",
        "CPU_SPEED": "2400",
    }


def test_comments_and_blank_lines_are_skipped() -> None:
    text = "\n# header\n   # indented\n\nA = 1 # trailing\n\t\n#last without newline"
    assert parse(text) == {"A": "1"}


def test_attributes_need_no_separator_after_a_quote_or_bracket() -> None:
    assert parse('A="x"B="y" V=[C=1]D=2') == {"A": "x", "B": "y", "V": {"C": "1"}, "D": "2"}


def test_empty_text_is_an_empty_template() -> None:
    assert parse("") == {}
    assert parse("\n\n# only comments\n") == {}


@pytest.mark.parametrize(
    "text",
    ['A = "<![CDATA[x]]>"', 'V = [ A = "]]>" ]', 'A = "multi\nline ]]> value"'],
)
def test_cdata_terminator_in_a_value_is_rejected(text: str) -> None:
    with pytest.raises(TemplateError, match=r"\]\]>") as caught:
        parse(text)
    assert caught.value.reason == "bad_template"


def test_cdata_terminator_error_points_at_it() -> None:
    with pytest.raises(TemplateError) as caught:
        parse('A = 1\nB = "ok\nthen ]]> here"')
    assert (caught.value.line, caught.value.column) == (3, 6)


def test_cdata_terminator_in_a_comment_is_harmless() -> None:
    assert parse("# ]]>\nA = 1") == {"A": "1"}


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("A = 1\nB 2", 2, 3, "expected '='"),
        ("= 1", 1, 1, "attribute name"),
        ("A = 1\n  !x = 2", 2, 3, "attribute name"),
        ('A = "abc\nB = 1', 1, 5, "unterminated quoted"),
        ("A = ,", 1, 5, "expected a value"),
        ("A = =", 1, 5, "expected a value"),
        ("V = [ A = 1,]", 1, 13, "expected a key"),
        ("V = [ A = 1 B = 2 ]", 1, 13, "expected ',' or ']'"),
        ("V = [ A =\n]", 1, 10, 'written ""'),
        ("V = [\n A = 1,\n B = 2\n", 4, 1, "unterminated vector"),
        ("V = [ A ]", 1, 9, "expected '='"),
        ("V = [ A = [ ] ]", 1, 11, "expected a value"),
        ('A = "x"\r\nB = 1', 1, 8, "attribute name"),
    ],
)
def test_errors_carry_line_column_and_reason(text: str, line: int, column: int, words: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse(text)
    error = caught.value
    assert (error.line, error.column) == (line, column)
    assert words in str(error)
    assert error.reason == "bad_template"
    assert f"line {line}, column {column}" in str(error)


def test_input_over_max_size_is_too_large_not_bad_template() -> None:
    with pytest.raises(WireError) as caught:
        parse("A = 1\n" * 10, max_size=59)
    assert caught.value.reason == "too_large"
    assert not isinstance(caught.value, TemplateError)
    assert parse("A = 1\n" * 10, max_size=60) == {"A": ["1"] * 10}


@pytest.mark.parametrize(
    "text",
    [
        'A = "' + '\\"' * 200_000,  # escaped quotes, no closing one
        'A = "' + 'x\\"' * 200_000 + "x",
        'A = "' + "\\" * 500_000,
        "#" * 500_000 + "\nA",
        " " * 500_000 + "!",
        "V = [" + "A=1," * 200_000,
        "A=\n" * 200_000,
    ],
)
def test_adversarial_inputs_finish_quickly(text: str) -> None:
    start = time.perf_counter()
    with contextlib.suppress(TemplateError):
        parse(text)
    assert time.perf_counter() - start < 5


# --------------------------------------------------------------------------- writer


def test_write_quotes_and_escapes() -> None:
    text = write({"A": 'say "hi"', "B": "two\nlines", "C": ""})
    assert text == 'A = "say \\"hi\\""\nB = "two\nlines"\nC = ""\n'


def test_write_numbers_vectors_lists_and_empty_vector() -> None:
    data = {"N": 7, "F": 0.1, "V": {"ID": 3, "X": "y"}, "DS": [{"ID": 0}, {"ID": 1}], "E": {}}
    text = write(data)
    assert text == (
        'N = "7"\nF = "0.1"\nV = [ ID = "3", X = "y" ]\n'
        'DS = [ ID = "0" ]\nDS = [ ID = "1" ]\nE = [ ]\n'
    )
    assert parse(text) == {
        "N": "7",
        "F": "0.1",
        "V": {"ID": "3", "X": "y"},
        "DS": [{"ID": "0"}, {"ID": "1"}],
        "E": {},
    }


def test_write_floats_with_repr() -> None:
    assert parse(write({"F": 1e-20, "G": 2.0, "H": 1 / 3})) == {
        "F": "1e-20",
        "G": "2.0",
        "H": "0.3333333333333333",
    }


def test_write_upper_cases_names() -> None:
    assert write({"cpu": "1", "v": {"k": "2"}}) == 'CPU = "1"\nV = [ K = "2" ]\n'


def test_write_value_ending_in_backslash_as_bare_word() -> None:
    text = write({"PATH": "C:\\", "V": {"D": "x\\"}, "Q": 'q"\\'})
    assert text == 'PATH = C:\\\nV = [ D = x\\ ]\nQ = q"\\\n'
    assert parse(text) == {"PATH": "C:\\", "V": {"D": "x\\"}, "Q": 'q"\\'}


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"A": "x]]>y"}, "]]>"),
        ({"V": {"K": "]]>"}}, "]]>"),
        ({"A": "two words\\"}, "backslash"),
        ({"A": '"q\\'}, "backslash"),
        ({"A": '\\"\\'}, "backslash"),
        ({"A-B": "1"}, "[A-Za-z0-9_]"),
        ({"": "1"}, "[A-Za-z0-9_]"),
        ({"É": "1"}, "[A-Za-z0-9_]"),
        ({"V": {"bad key": "1"}}, "[A-Za-z0-9_]"),
        ({"a": "1", "A": "2"}, "repeats"),
        ({"V": {"k": "1", "K": "2"}}, "repeats"),
        ({"A": [["x"]]}, "nested lists"),
        ({"A": []}, "empty list"),
        ({"V": {"MONITOR": {"CPU": "1"}}}, "scalars only"),
        ({"V": {"L": ["1"]}}, "scalars only"),
        ({"A": True}, "booleans"),
        ({"A": None}, "NoneType"),
        ({"A": b"bytes"}, "bytes"),
        ({1: "x"}, "[A-Za-z0-9_]"),
    ],
)
def test_write_rejects_what_the_language_cannot_express(data: Any, words: str) -> None:
    with pytest.raises(TemplateError) as caught:
        write(data)
    assert words in str(caught.value)


# --------------------------------------------------------------------------- round trips

_names = st.from_regex(r"[A-Za-z0-9_]{1,6}", fullmatch=True)
_texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(' "\\\n\t=#,[]]>\r')), st.characters(exclude_categories=["Cs"])
    ),
    max_size=24,
)
_scalars = st.one_of(_texts, st.integers(), st.floats(allow_nan=False))
_vectors = st.dictionaries(_names, _scalars, max_size=4)
_values = st.one_of(_scalars, _vectors)
_templates = st.dictionaries(
    _names, st.one_of(_values, st.lists(_values, min_size=2, max_size=3)), max_size=6
)


def _expected(data: Any) -> Any:
    """What parse gives back: names upper-cased, every scalar as text."""
    if isinstance(data, dict):
        return {key.upper(): _expected(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_expected(item) for item in data]
    if isinstance(data, float):
        return repr(data)
    return str(data)


def _unwritable_reasons(data: Any, top: bool = True) -> bool:
    """True if ``data`` holds something the writer may refuse (names colliding, ]]>, a final \\)."""
    if isinstance(data, dict):
        upper = [str(key).upper() for key in data]
        if len(set(upper)) != len(upper):
            return True
        return any(_unwritable_reasons(value, False) for value in data.values())
    if isinstance(data, list):
        return any(_unwritable_reasons(item, False) for item in data)
    text = str(data)
    return "]]>" in text or text.endswith("\\")


@settings(max_examples=400)
@given(_templates)
def test_write_then_parse_gives_the_same_data_or_refuses(data: dict[str, Any]) -> None:
    try:
        text = write(data)
    except TemplateError:
        assert _unwritable_reasons(data)
        return
    assert parse(text) == _expected(data)


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list('AB=" \\\n#,[]x>\r')), max_size=40))
def test_any_text_parses_or_raises_template_error(text: str) -> None:
    try:
        result = parse(text)
    except TemplateError as error:
        assert error.line >= 1 and error.column >= 1
        return
    assert all(name == name.upper() for name in result)


@settings(max_examples=200)
@given(st.text(alphabet=st.sampled_from(list('AB=" \\\n#,[]x>\r')), max_size=40))
def test_parse_then_write_then_parse_is_stable(text: str) -> None:
    try:
        first = parse(text)
        again = write(first)
    except TemplateError:
        return
    assert parse(again) == first
