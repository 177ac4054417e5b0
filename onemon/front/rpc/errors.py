"""OpenNebula's error codes and message texts (``Request.h``, ``Request::failure_message``)."""

from __future__ import annotations

import enum


class ErrorCode(enum.IntEnum):
    """The third item of a failure response."""

    SUCCESS = 0x0000
    AUTHENTICATION = 0x0100
    AUTHORIZATION = 0x0200
    NO_EXISTS = 0x0400
    ACTION = 0x0800
    RPC_API = 0x1000
    INTERNAL = 0x2000
    ALLOCATE = 0x4000
    LOCKED = 0x8000


class RpcError(Exception):
    """A failure answered as ``[false, "[method] message", code, resp_id, -1]``."""

    def __init__(self, code: ErrorCode, message: str, resp_id: int = -1) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.resp_id = resp_id


class Fault(Exception):
    """A protocol error answered as an XML-RPC ``<fault>`` (xmlrpc-c's codes)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


TYPE_ERROR = -501
PARSE_ERROR = -503
NO_SUCH_METHOD = -506


def authentication() -> RpcError:
    """Bad or missing credentials."""
    return RpcError(ErrorCode.AUTHENTICATION, "User couldn't be authenticated, aborting call.")


def authorization(uid: int, operation: str) -> RpcError:
    """The user may not do ``operation`` (e.g. ``ADMIN HOST [3]``)."""
    return RpcError(
        ErrorCode.AUTHORIZATION, f"User [{uid}] : Not authorized to perform {operation}."
    )


def no_exists(obj: str, oid: int) -> RpcError:
    """``Error getting <obj> [<id>].``"""
    return RpcError(ErrorCode.NO_EXISTS, f"Error getting {obj} [{oid}].", oid)


def allocate(obj: str, reason: str) -> RpcError:
    """``Error allocating a new <obj>. <reason>``"""
    return RpcError(ErrorCode.ALLOCATE, f"Error allocating a new {obj}. {reason}")


def action(reason: str, oid: int = -1) -> RpcError:
    """The object is in the wrong state for the action."""
    return RpcError(ErrorCode.ACTION, reason, oid)


def api(reason: str, oid: int = -1) -> RpcError:
    """A bad argument value."""
    return RpcError(ErrorCode.RPC_API, reason, oid)


def internal(reason: str, oid: int = -1) -> RpcError:
    """A failure on our side; ``reason`` never carries internals."""
    return RpcError(ErrorCode.INTERNAL, reason, oid)
