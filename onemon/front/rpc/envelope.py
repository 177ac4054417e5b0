"""XML-RPC requests in, responses out: bounded, no DTDs, XML-safe text."""

from __future__ import annotations

import re
import xmlrpc.client
from typing import Any
from xml.parsers.expat import ExpatError

from onemon.front.rpc.errors import PARSE_ERROR, Fault

_FORBIDDEN = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MAX_METHOD_CHARS = 128


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (they would break the response)."""
    return _NOT_XML.sub("", text)


def decode_call(body: bytes) -> tuple[str, tuple[Any, ...]]:
    """The method name and parameters of a call; :class:`Fault` when it is not one."""
    if _FORBIDDEN.search(body):
        raise Fault(PARSE_ERROR, "XML-RPC call must not contain a document type declaration")
    try:
        params, method = xmlrpc.client.loads(body, use_builtin_types=True)
    except (ExpatError, xmlrpc.client.ResponseError, ValueError, TypeError, IndexError):
        raise Fault(PARSE_ERROR, "Call XML not a proper XML-RPC call") from None
    if not isinstance(method, str) or not method:
        raise Fault(PARSE_ERROR, "Call XML not a proper XML-RPC call")
    return method, params


def encode_success(value: Any) -> bytes:
    """``[true, value, 0]``."""
    return _dump((True, value, 0))


def encode_failure(message: str, code: int, resp_id: int) -> bytes:
    """``[false, message, code, resp_id, -1]`` (replication index UINT64_MAX sent as -1)."""
    return _dump((False, xml_text(message), int(code), int(resp_id), -1))


def encode_fault(code: int, message: str) -> bytes:
    """A standard ``<fault>``."""
    fault = xmlrpc.client.Fault(code, xml_text(message))
    return xmlrpc.client.dumps(fault, methodresponse=True, encoding="utf-8").encode("utf-8")


def _dump(result: tuple[Any, ...]) -> bytes:
    return xmlrpc.client.dumps((list(result),), methodresponse=True, encoding="utf-8").encode(
        "utf-8"
    )


def printable_method(method: str) -> str:
    """A method name fit to be echoed in a message."""
    return xml_text(method)[:MAX_METHOD_CHARS]
