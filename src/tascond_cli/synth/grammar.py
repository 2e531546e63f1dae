"""Action grammars: a small language for the loose step order of an activity, its parser and expander.

A grammar is a sequence of elements separated by spaces::

    take_bowl?0.5 pour_cereals (spoon_sugar stir_coffee?0.6)+0.3 {spoon_powder pour_milk} [butter_pan|pour_oil|]

- ``word``: one step, an action name of the profile's vocabulary;
- ``(a b ...)``: a group, in this order;
- ``{a b ...}``: a group, in a random order;
- ``[a b | c | ]``: one of the alternatives, chosen uniformly (an empty alternative means none);
- ``element?p``: the element is present with probability ``p``;
- ``element+p``: after it is drawn, the element is repeated again with probability ``p``, up to 3 more times.

:func:`expand` draws one step sequence from a parsed grammar with a given generator; the draws it makes
(and their order) are part of the synthesizer's output, so changing them changes every dataset.
"""

from __future__ import annotations

import re

import numpy as np

_TOKEN_RE = re.compile(r"\s*(?:([(){}\[\]|])|([?+])([0-9.]+)|([A-Za-z0-9_]+))")


class Node:
    """One element of a parsed grammar."""

    __slots__ = ("kind", "value", "opt", "rep")

    def __init__(self, kind: str, value: object) -> None:
        self.kind = kind  # "atom" | "seq" | "shuffle" | "alt"
        self.value = value  # the action name (atom) or the child nodes
        self.opt: float | None = None  # present with this probability
        self.rep: float | None = None  # repeated again with this probability (up to 3 more times)


def _tokens(text: str) -> list[tuple[str, str]]:
    """``(kind, value)`` pairs: ("punct", "(") ..., ("?", "0.4") / ("+", "0.5"), ("word", name)."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"bad grammar near {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.group(1):
            tokens.append(("punct", m.group(1)))
        elif m.group(2):
            tokens.append((m.group(2), m.group(3)))
        else:
            tokens.append(("word", m.group(4)))
    return tokens


def parse_grammar(text: str) -> Node:
    """Parse a grammar such as ``a b?0.4 (c d)+0.5 {e f} [g|h i|]`` into a tree of :class:`Node`."""
    tokens = _tokens(text)
    it = 0

    def parse_seq(stop: str) -> list[Node]:
        nonlocal it
        items: list[Node] = []
        while it < len(tokens):
            kind, val = tokens[it]
            if kind == "punct" and val in stop:
                return items
            it += 1
            if kind == "word":
                items.append(Node("atom", val))
            elif kind in "?+":
                if not items:
                    raise ValueError(f"modifier {kind}{val} without an element")
                if kind == "?":
                    items[-1].opt = float(val)
                else:
                    items[-1].rep = float(val)
            elif val == "(":
                items.append(Node("seq", parse_seq(")")))
                it += 1
            elif val == "{":
                items.append(Node("shuffle", parse_seq("}")))
                it += 1
            elif val == "[":
                alts = [Node("seq", parse_seq("|]"))]
                while tokens[it][1] == "|":
                    it += 1
                    alts.append(Node("seq", parse_seq("|]")))
                it += 1
                items.append(Node("alt", alts))
            else:
                raise ValueError(f"unexpected {val!r} in grammar")
        if stop:
            raise ValueError(f"grammar: missing {stop!r}")
        return items

    return Node("seq", parse_seq(""))


def expand(node: Node, rng: np.random.Generator, out: list[str]) -> None:
    """Append one draw of ``node``'s steps to ``out``."""
    if node.opt is not None and rng.random() >= node.opt:
        return
    times = 1
    if node.rep is not None:
        while times < 4 and rng.random() < node.rep:
            times += 1
    for _ in range(times):
        if node.kind == "atom":
            out.append(node.value)  # type: ignore[arg-type]
        elif node.kind == "seq":
            for child in node.value:  # type: ignore[attr-defined]
                expand(child, rng, out)
        elif node.kind == "shuffle":
            children = node.value  # type: ignore[assignment]
            for i in rng.permutation(len(children)):
                expand(children[int(i)], rng, out)
        else:  # alt
            children = node.value  # type: ignore[assignment]
            expand(children[int(rng.integers(len(children)))], rng, out)


def atoms(node: Node) -> set[str]:
    """Every action name that ``node`` can produce."""
    if node.kind == "atom":
        return {node.value}  # type: ignore[return-value]
    found: set[str] = set()
    for child in node.value:  # type: ignore[attr-defined]
        found |= atoms(child)
    return found
