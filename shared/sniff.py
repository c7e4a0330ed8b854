"""Content detection from the bytes, never from the filename or the declared type.

The walking skeleton accepts plain text only (UTF-8, or UTF-16 with a BOM); richer formats
arrive with the document pipeline.
"""

from __future__ import annotations

import codecs

TEXT_PLAIN = "text/plain"


def decode_text(data: bytes) -> str | None:
    """The text of `data` if it is text (UTF-8 / UTF-16 with BOM), else None."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    if b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    controls = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\t\n\r\f")
    return None if controls else text


def sniff(data: bytes) -> str | None:
    """The detected content type, or None when unsupported."""
    return TEXT_PLAIN if decode_text(data) is not None else None
