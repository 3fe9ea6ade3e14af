"""AMI wire format, without I/O: framing the byte stream into messages and parsing plain events.

Pure and capped like :mod:`ivr.agi.protocol`: UTF-8 is decoded incrementally, so a character
split across two reads survives (panoramisk decodes each read alone and lost it); a peer that
never ends a message is refused past ``MAX_PENDING`` characters instead of growing memory. The
asyncio protocol in :mod:`ivr.ami.client` feeds it each read.
"""

from __future__ import annotations

import codecs

EOM = "\r\n\r\n"
MAX_PENDING = 1 << 20  # characters of an unfinished message: a peer that never ends one is cut off


class AmiFramingError(Exception):
    """The peer sent more than ``MAX_PENDING`` characters without ending a message."""


class Framer:
    """Accumulates reads; :meth:`feed` returns the messages they completed, in order, each
    without its terminating blank line."""

    def __init__(self, limit: int = MAX_PENDING):
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._limit = limit
        self.pending = ""  # the start of the next message

    def feed(self, data: bytes) -> list[str]:
        """Add one read; AmiFramingError (and nothing kept) when the unfinished message passes the cap."""
        blocks = (self.pending + self._decoder.decode(data)).split(EOM)
        self.pending = blocks.pop()
        if len(self.pending) > self._limit:
            self.pending = ""
            raise AmiFramingError(f"an AMI message longer than {self._limit} characters")
        return blocks


def is_plain_event(block: str) -> bool:
    """An event that answers no action (no ``ActionID``) and is not ``Shutdown``: the call
    tracker's whole diet, parsed by :func:`parse_event`; everything else is panoramisk's."""
    return block.startswith("Event: ") and "\r\nActionID: " not in block and not block.startswith("Event: Shutdown")


def parse_event(block: str) -> dict[str, str]:
    """The headers of one message. Asterisk's own headers come first: a header repeated later is a
    value that smuggled a comma into a UserEvent (``1,Linkedid: …``), never the truth, so the first wins."""
    event: dict[str, str] = {}
    for line in block.split("\r\n"):
        key, _, value = line.partition(": ")
        event.setdefault(key, value)
    return event
