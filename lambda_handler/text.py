"""The one way the function cuts text it echoes (details, device ids, log sentences).

A message's own bytes can be anything up to 1 MB; what the function repeats of them in a
problem detail, a quarantine entry or a log line is cut to a known length, always the same way
(an ellipsis marks the cut), so what an operator reads is bounded and recognisable.
"""

from __future__ import annotations

ELLIPSIS = "..."


def clip(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start and an ellipsis, `limit` in all."""
    return text if len(text) <= limit else text[: max(limit - len(ELLIPSIS), 0)] + ELLIPSIS
