"""Reading a request body within limits: a gzip bomb must not exhaust memory."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from fastapi import HTTPException


async def read_limited(chunks: AsyncIterator[bytes], declared_length: str | None,
                       limit: int) -> bytes:
    """The raw body, or 413 as soon as it is known to be longer than ``limit``."""
    if declared_length is not None:
        try:
            declared = int(declared_length)
        except ValueError:
            raise HTTPException(400, "Content-Length is not a number") from None
        if declared > limit:
            raise HTTPException(413, f"body of {declared} bytes is over the {limit}-byte limit")
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body is over the {limit}-byte limit")
    return bytes(body)


def decode(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding``; decompressed output beyond ``limit`` is a 413."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in {"gzip", "x-gzip"}:
        raise HTTPException(415, f"Content-Encoding {encoding!r} is not supported (use gzip)")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        # Never inflate more than one byte past the limit, whatever the input claims.
        output = inflater.decompress(body, limit + 1)
        if len(output) > limit or inflater.unconsumed_tail:
            raise HTTPException(413, f"decompressed body is over the {limit}-byte limit")
        output += inflater.flush()
    except zlib.error as exc:
        raise HTTPException(422, f"body is not valid gzip: {exc}") from None
    if len(output) > limit:
        raise HTTPException(413, f"decompressed body is over the {limit}-byte limit")
    if not inflater.eof:
        raise HTTPException(422, "body is not valid gzip: it ends before the gzip stream does")
    return output
