"""Readable differences between two versions of a segment: its rules and its plain settings.

Each change is a dict a merchant can read and the API can store (plain JSON):

    {"change": "added" | "removed" | "changed" | "created",
     "path": "include.all[1]",       # where, as rules.parse names paths (the new version's; the old
                                     # one's for a removal, and in "before_path" when it moved)
     "text": "Added: Orders (last 90 days) is at least 3",
     "before": ..., "after": ...}    # the node documents (or values) on either side, where there is one

Rules are compared as trees, in the words of rules.describe:

- Inside a group, identical conditions and groups pair up wherever they stand (`all` and `any` do
  not care about order; a pure reordering is one note). The rest pair up in order when they test
  the same metric (a changed operator, value, window or parameters is one "changed" entry:
  "Orders (last 90 days): at least 3 → at least 5") or are groups of the same shape; anything left
  is removed or added.
- A group switching between `all` and `any` is one entry, followed by its children's changes.
- A lone condition wrapped into a group (or a group unwrapped to a lone condition) is compared as
  a one-item group, so adding a second condition reads as one addition (and wrapping alone is a note).
- Changes inside `exclude` and inside `not` say so, since they select the opposite customers.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

from segments.engine.rules import All, Any_, Condition, Node, Not, RuleSet, describe, describe_node

ARROW = "→"


@dataclasses.dataclass(frozen=True)
class _Where:
    """Where a node sits: which half of the document, and whether an odd number of `not`s wrap it."""

    exclude: bool = False
    negated: bool = False

    def inside_not(self) -> _Where:
        return dataclasses.replace(self, negated=not self.negated)

    def prefix(self) -> str:
        """'In exclusions, ' / 'Inside "not", ' / '' before a "changed" text."""
        parts = (["in exclusions"] if self.exclude else []) + (['inside "not"'] if self.negated else [])
        text = ", ".join(parts)
        return text[:1].upper() + text[1:] + ", " if text else ""

    def say(self, body: str) -> str:
        """A "changed" sentence whose body starts in lower case: 'In exclusions, match any ...'."""
        text = self.prefix() + body
        return text[:1].upper() + text[1:]

    def added(self, alternative: bool) -> str:
        return ("Added alternative" if alternative else "Added") + (" to exclusions" if self.exclude else "") \
            + (' inside "not"' if self.negated else "")

    def removed(self, alternative: bool) -> str:
        return ("Removed alternative" if alternative else "Removed") + (" from exclusions" if self.exclude else "") \
            + (' inside "not"' if self.negated else "")


# -- rules -------------------------------------------------------------------------------------
def rules_diff(before: RuleSet | None, after: RuleSet) -> list[dict]:
    """The changes from `before` to `after`, in document order (include, then exclude); [] when
    they select the same way written the same way. `before=None` (a new segment) is one "created"
    entry describing the rules."""
    if before is None:
        return [{"change": "created", "path": "", "text": describe(after), "after": after.to_document()}]
    changes: list[dict] = []
    if before.version != after.version:
        changes.append({"change": "changed", "path": "version", "text": f"Rules format: version {before.version} "
                        f"{ARROW} version {after.version}", "before": before.version, "after": after.version})
    changes += _node(before.include, after.include, "include", "include", _Where(), None, None)
    where = _Where(exclude=True)
    if before.exclude is not None and after.exclude is not None:
        changes += _node(before.exclude, after.exclude, "exclude", "exclude", where, None, None)
    elif after.exclude is not None:
        changes.append(_added(after.exclude, "exclude", where, None))
    elif before.exclude is not None:
        changes.append(_removed(before.exclude, "exclude", where, None))
    return changes


def _document(node: Node) -> dict:
    return RuleSet(include=node).to_document()["include"]


def _key(node: Node) -> str:
    """Equal for nodes that are written the same way (the canonical document)."""
    return json.dumps(_document(node), sort_keys=True, ensure_ascii=False)


def _kind(node: Node) -> str | None:
    return "all" if isinstance(node, All) else "any" if isinstance(node, Any_) else None


def _added(node: Node, path: str, where: _Where, parent: str | None) -> dict:
    return {"change": "added", "path": path, "text": f"{where.added(parent == 'any')}: {describe_node(node)}",
            "after": _document(node)}


def _removed(node: Node, path: str, where: _Where, parent: str | None) -> dict:
    return {"change": "removed", "path": path, "text": f"{where.removed(parent == 'any')}: {describe_node(node)}",
            "before": _document(node)}


def _changed(text: str, bpath: str, apath: str, **sides) -> dict:
    entry = {"change": "changed", "path": apath, "text": text, **sides}
    if bpath != apath:
        entry["before_path"] = bpath
    return entry


def _node(before: Node, after: Node, bpath: str, apath: str, where: _Where,
          bparent: str | None, aparent: str | None) -> list[dict]:
    """Changes from one node to its counterpart. `bparent`/`aparent`: the kind of group each sits in."""
    if _key(before) == _key(after):
        return []
    if isinstance(before, Condition) and isinstance(after, Condition):
        if before.metric.key == after.metric.key:
            return [_changed(where.prefix() + _condition_change(before, after), bpath, apath,
                             before=_document(before), after=_document(after))]
    elif isinstance(before, Not) and isinstance(after, Not):
        return _node(before.child, after.child, f"{bpath}.not", f"{apath}.not", where.inside_not(), None, None)
    elif _kind(before) or _kind(after):
        bkind, akind = _kind(before), _kind(after)
        changes = []
        if bkind and akind and bkind != akind:
            text = where.say(f"match {akind} of these conditions instead of {bkind} of them")
            changes.append(_changed(text, bpath, apath, before=bkind, after=akind))
        # A lone node on one side is compared as a one-item group of the other side's kind.
        bitems = [(c, f"{bpath}.{bkind}[{i}]") for i, c in enumerate(before.children)] if bkind else [(before, bpath)]
        aitems = [(c, f"{apath}.{akind}[{i}]") for i, c in enumerate(after.children)] if akind else [(after, apath)]
        changes += _children(bitems, aitems, where, bkind or bparent, akind or aparent, apath)
        if not changes:     # {"all": [x]} and x: written differently, selecting the same
            changes.append(_changed(where.say("conditions regrouped (who matches is unchanged)"), bpath, apath,
                                    before=_document(before), after=_document(after)))
        return changes
    return [_removed(before, bpath, where, bparent), _added(after, apath, where, aparent)]


def _children(bitems: list[tuple[Node, str]], aitems: list[tuple[Node, str]], where: _Where,
              bkind: str | None, akind: str | None, group_path: str) -> list[dict]:
    bkeys, akeys = [_key(n) for n, _ in bitems], [_key(n) for n, _ in aitems]
    pairs: dict[int, int] = {}                       # before index -> after index
    taken: set[int] = set()
    for i, key in enumerate(bkeys):                  # identical nodes, wherever they stand
        j = next((j for j, other in enumerate(akeys) if j not in taken and other == key), None)
        if j is not None:
            pairs[i] = j
            taken.add(j)
    similar = _align([i for i in range(len(bitems)) if i not in pairs],
                     [j for j in range(len(aitems)) if j not in taken], bitems, aitems)
    changes = [_removed(node, path, where, bkind) for i, (node, path) in enumerate(bitems)
               if i not in pairs and i not in similar]
    by_after = {j: i for i, j in similar.items()}
    for j, (node, path) in enumerate(aitems):
        if j in by_after:
            i = by_after[j]
            changes += _node(bitems[i][0], node, bitems[i][1], path, where, bkind, akind)
        elif j not in taken:
            changes.append(_added(node, path, where, akind))
    order = [j for _, j in sorted({**pairs, **similar}.items())]
    if any(a > b for a, b in zip(order, order[1:])):
        changes.append({"change": "changed", "path": group_path,
                        "text": where.say("conditions reordered (who matches is unchanged)")})
    return changes


def _align(bfree: list[int], afree: list[int], bitems, aitems) -> dict[int, int]:
    """Pair the leftover nodes in order, most alike first (a weighted longest common subsequence)."""
    n, m = len(bfree), len(afree)
    if not n or not m:
        return {}
    score = [[_similarity(bitems[i][0], aitems[j][0]) for j in afree] for i in bfree]
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for x in range(n - 1, -1, -1):
        for y in range(m - 1, -1, -1):
            take = best[x + 1][y + 1] + score[x][y] if score[x][y] else 0
            best[x][y] = max(take, best[x + 1][y], best[x][y + 1])
    pairs, x, y = {}, 0, 0
    while x < n and y < m:
        if score[x][y] and best[x][y] == best[x + 1][y + 1] + score[x][y]:
            pairs[bfree[x]] = afree[y]
            x, y = x + 1, y + 1
        elif best[x][y] == best[x + 1][y]:
            x += 1
        else:
            y += 1
    return pairs


def _similarity(before: Node, after: Node) -> int:
    """0 when the two cannot be one node edited; higher the more they have in common."""
    if isinstance(before, Condition) and isinstance(after, Condition):
        if before.metric.key != after.metric.key:
            return 0
        return 1 + sum((before.op == after.op, before.window == after.window,
                        dict(before.params) == dict(after.params), before.value == after.value))
    if isinstance(before, Not) and isinstance(after, Not):
        return 1 + _similarity(before.child, after.child)
    bkind, akind = _kind(before), _kind(after)
    if bkind and akind:
        shared = len({_key(c) for c in before.children} & {_key(c) for c in after.children})
        return 1 + (bkind == akind) + shared
    if bkind or akind:      # a lone node and a group holding it: the node was wrapped (or unwrapped)
        group, lone = (before, after) if bkind else (after, before)
        return 1 if _key(lone) in {_key(c) for c in group.children} else 0
    return 0


def _subject(condition: Condition) -> str:
    """The metric with its parameters and window, as describe words it: 'Orders (last 90 days)'."""
    text = describe_node(dataclasses.replace(condition, op="is", value=True))   # "<subject>: yes"
    return text[:-len(": yes")]


def _predicate(condition: Condition, subject: str) -> str:
    """What the condition asks of its subject: 'at least 3', 'between 4 and 5', 'yes'."""
    rest = describe_node(condition)[len(subject):]
    for lead in (": ", " is "):
        if rest.startswith(lead):
            return rest[len(lead):]
    return rest.strip()


def _condition_change(before: Condition, after: Condition) -> str:
    subject = _subject(after)
    if _subject(before) == subject:
        return f"{subject}: {_predicate(before, subject)} {ARROW} {_predicate(after, subject)}"
    return f"{describe_node(before)} {ARROW} {describe_node(after)}"


# -- settings ----------------------------------------------------------------------------------
SETTINGS = {           # key -> (label, how a value reads)
    "name": ("Name", lambda v: json.dumps(v, ensure_ascii=False)),
    "holdout_percent": ("Holdout", lambda v: f"{v}%"),
    "group": ("Exclusive group", lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, str) else str(v)),
    "priority": ("Priority", str),
    "status": ("Status", str),
}


def settings_diff(before: Mapping | None, after: Mapping) -> list[dict]:
    """Changes to a segment's plain settings, e.g. "Holdout: 0% → 10%".

    Known settings come first in a fixed order (name, holdout_percent, group, priority, status),
    then any other key alphabetically, labelled from its name. A key missing on one side, None
    and "" all read "none". `group` is the group's name (or None). `before=None` is {}.
    """
    before = before or {}
    keys = [k for k in SETTINGS if k in before or k in after]
    keys += sorted(k for k in {*before, *after} if k not in SETTINGS)
    changes = []
    for key in keys:
        old, new = before.get(key), after.get(key)
        if _blank(old) and _blank(new) or old == new:
            continue
        label, show = SETTINGS.get(key, (key.replace("_", " ").capitalize(), _plain))
        text = f"{label}: {'none' if _blank(old) else show(old)} {ARROW} {'none' if _blank(new) else show(new)}"
        changes.append({"change": "changed", "path": key, "text": text, "before": _json(old), "after": _json(new)})
    return changes


def _blank(value: object) -> bool:
    return value is None or value == ""


def _plain(value: object) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)


def _json(value: object) -> object:
    """The value as stored in a JSON diff: JSON's own types as they are, anything else as text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    return str(value)
