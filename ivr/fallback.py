"""The dialect fallback walk: which dialects' text or recordings stand in for a dialect, in order.

One walk shared by the flow interpreter (prompt text for a call), the flow validator (is every
declared dialect covered?) and the prompt layer (recording or voice for a prompt), so the dialect a
caller hears is the one `ivr validate` and `ivr prompts check` promised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["fallback_chain"]


def fallback_chain(code: str, fallbacks: Mapping[str, Sequence[str]], default: str) -> tuple[str, ...]:
    """`code`, then the dialects that stand in for it, depth first, each once (nan → cmn).

    A dialect `fallbacks` does not know falls back to `default`.
    """
    out: list[str] = []
    todo = [code]
    while todo:
        current = todo.pop()
        if current in out:
            continue
        out.append(current)
        todo.extend(reversed(fallbacks.get(current, ())))
    if code not in fallbacks and default not in out:
        out.extend(c for c in fallback_chain(default, fallbacks, default) if c not in out)
    return tuple(out)
