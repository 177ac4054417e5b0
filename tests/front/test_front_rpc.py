"""The XML-RPC envelope and HTTP side: bounded, strict, and nothing a client sends crashes it."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
import xmlrpc.client

import pytest

from onemon.front.rpc import envelope
from onemon.front.rpc.errors import Fault
from onemon.front.rpc.params import Param, bind, opt
from tests.front.harness import Stack


def post(url: str, body: bytes, method: str = "POST") -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method,
                                     headers={"Content-Type": "text/xml"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def call_body(session: str, *params: str) -> bytes:
    values = "".join(f"<param><value>{p}</value></param>" for p in params)
    return (
        "<?xml version='1.0'?><methodCall><methodName>one.host.info</methodName><params>"
        f"<param><value><string>{session}</string></value></param>{values}</params></methodCall>"
    ).encode()


async def test_http_side(stack: Stack) -> None:
    ok = await asyncio.to_thread(post, stack.url, call_body(stack.session, "<i4>3</i4>"))
    assert ok[0] == 200
    answer = xmlrpc.client.loads(ok[1])[0][0]
    assert answer[0] is True and answer[1].startswith("<HOST><ID>3</ID>") and answer[2] == 0
    big = call_body(stack.session, "<i8>1099511627776</i8>")
    status, body = await asyncio.to_thread(post, stack.url, big)
    with pytest.raises(xmlrpc.client.Fault, match="integer"):
        xmlrpc.client.loads(body)
    for garbage in (b"", b"<methodCall>", b"\xff\xfe", b"<a>" * 10_000 + b"</a>" * 10_000):
        status, body = await asyncio.to_thread(post, stack.url, garbage)
        assert status == 200
        with pytest.raises(xmlrpc.client.Fault) as raised:
            xmlrpc.client.loads(body)
        assert raised.value.faultCode == -503
    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaa">]>' + call_body(stack.session, "<i4>3</i4>")
    status, body = await asyncio.to_thread(post, stack.url, bomb)
    with pytest.raises(xmlrpc.client.Fault, match="document type"):
        xmlrpc.client.loads(body)
    status, _ = await asyncio.to_thread(post, stack.url, b"x" * (2 * 1024 * 1024))
    assert status == 413
    status, _ = await asyncio.to_thread(post, stack.url, b"", "GET")
    assert status == 405
    status, _ = await asyncio.to_thread(post, stack.url.replace("/RPC2", "/"), b"<x/>")
    assert status == 404


async def test_handler_bug_is_an_internal_error_without_details(stack: Stack) -> None:
    assert stack.front.context is not None

    async def broken() -> None:
        raise RuntimeError("secret path /var/lib/x")

    stack.front.context.view.snapshot = broken  # type: ignore[method-assign,assignment]
    answer = await stack.call("one.hostpool.info")
    assert answer == [False, "[one.hostpool.info] Internal error, see the front-end's log.",
                      0x2000, -1, -1]  # fmt: skip


def test_failure_messages_are_xml_safe() -> None:
    body = envelope.encode_failure("[m] bad \x01name\x7f <x>", 0x400, 7)
    answer = xmlrpc.client.loads(body)[0][0]
    assert answer == [False, "[m] bad name\x7f <x>", 0x400, 7, -1]
    fault = envelope.encode_fault(-501, "nope\x00")
    with pytest.raises(xmlrpc.client.Fault, match="nope"):
        xmlrpc.client.loads(fault)


def test_decode_call() -> None:
    body = xmlrpc.client.dumps(("s", 1, True, "x"), "one.host.info").encode()
    assert envelope.decode_call(body) == ("one.host.info", ("s", 1, True, "x"))
    with pytest.raises(Fault):
        envelope.decode_call(b"<methodCall><params/></methodCall>")


def test_bind_types_and_defaults() -> None:
    signature = (Param("id", "int"), opt("decrypt", "bool", False))
    assert bind((3,), signature) == [3, False]
    assert bind((3, True, "extra"), signature) == [3, True]
    for values, message in [
        ((), "Not enough parameters"),
        (("3",), "Parameter that is supposed to be integer is not"),
        ((True,), "Parameter that is supposed to be integer is not"),
        ((3.0,), "Parameter that is supposed to be integer is not"),
        ((3, 1), "Parameter that is supposed to be boolean is not"),
    ]:
        with pytest.raises(Fault) as raised:
            bind(values, signature)
        assert (raised.value.code, raised.value.message) == (-501, message)
