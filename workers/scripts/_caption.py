"""Caption text: spintax and TikTok's title/description split."""

from __future__ import annotations

import random


def resolve_spintax(text: str, rng: random.Random) -> str:
    """Pick one option of every ``{a|b|c}`` group, innermost first; nested groups work.

    Braces that hold no ``|`` are left as written, so ``{name}``-style text survives.
    """
    result = text
    while True:
        close = result.find("}")
        if close < 0:
            return result
        open_ = result.rfind("{", 0, close)
        if open_ < 0:
            # a stray "}" with nothing to match: keep it and look further on
            return result[: close + 1] + resolve_spintax(result[close + 1 :], rng)
        body = result[open_ + 1 : close]
        if "|" not in body:
            # not a spintax group: protect it from being matched again
            rest = resolve_spintax(result[close + 1 :], rng)
            return resolve_spintax(result[:open_], rng) + "{" + body + "}" + rest
        result = result[:open_] + rng.choice(body.split("|")) + result[close + 1 :]


def split_title(caption: str) -> tuple[str, str]:
    """TikTok's convention: ``title##description``; no ``##`` means no title."""
    if "##" not in caption:
        return "", caption
    title, description = caption.split("##", 1)
    return title.strip(), description.strip()
