"""YAML that remembers where every value came from.

Admins edit YAML by hand; when something is wrong they need ``file:line:col: reason``,
not a traceback. This loader builds plain Python data (dicts, lists, scalars) and, beside
it, a table from each value's path (``("queues", "general", "timeout")``) to its position.
Config validation and the flow compiler both report errors through it.
Duplicate keys, which plain YAML silently collapses, are an error here.

Aliases and anchors (``&a``, ``*a``, ``<<: *a``) are refused: every use of an alias is
expanded and located again, so 400 bytes of nested aliases ("billion laughs") would take
gigabytes and minutes. Config files never need them. A file is also capped in size and in
nodes, so no admin-edited file (a console draft included) can make parsing unbounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Path_ = tuple[str | int, ...]
MAX_BYTES = 1 << 20  # the largest config file is ~20 KiB (a plan); prompts/catalog.yaml ~40 KiB
MAX_NODES = 50_000  # mappings, lists and scalars in one file (config/ has at most a few thousand)


@dataclass(frozen=True)
class Location:
    file: str
    line: int  # 1-based
    col: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class SourceError(Exception):
    """A problem in an admin-edited file, with where it is."""

    def __init__(self, location: Location | None, reason: str):
        self.location = location
        self.reason = reason
        super().__init__(f"{location}: {reason}" if location else reason)


class SourceErrors(Exception):
    """Several problems at once, so an admin can fix them in one go."""

    def __init__(self, errors: list[SourceError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass
class Document:
    """Parsed YAML data plus the location of every key and value in it."""

    file: str
    data: Any
    value_at: dict[Path_, Location] = field(default_factory=dict)
    key_at: dict[Path_, Location] = field(default_factory=dict)

    def where(self, path: Path_) -> Location:
        """The closest known location for ``path``: the value, its key, or an ancestor."""
        path = tuple(path)
        while True:
            if path in self.value_at:
                return self.value_at[path]
            if path in self.key_at:
                return self.key_at[path]
            if not path:
                return Location(self.file, 1, 1)
            path = path[:-1]

    def where_key(self, path: Path_) -> Location:
        return self.key_at.get(tuple(path)) or self.where(path)

    def error(self, path: Path_, reason: str, *, at_key: bool = False) -> SourceError:
        return SourceError(self.where_key(path) if at_key else self.where(path), reason)


def _loc(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _build(doc: Document, node: yaml.Node, path: Path_, loader: yaml.SafeLoader) -> Any:
    doc.value_at[path] = _loc(doc.file, node)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or isinstance(key, bool):
                raise SourceError(_loc(doc.file, key_node), f"a key must be text, not {key!r}")
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                first = doc.key_at[path + (key,)]
                raise SourceError(
                    _loc(doc.file, key_node),
                    f"duplicate key {key!r} (first defined at line {first.line})",
                )
            doc.key_at[path + (key,)] = _loc(doc.file, key_node)
            out[key] = _build(doc, value_node, path + (key,), loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(doc, item, path + (i,), loader) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # a scalar YAML reads as a date but no calendar has: 2027-06-31
        raise SourceError(_loc(doc.file, node), f"{node.value!r} is not a valid date or value: {exc}") from None


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and anchors and counts nodes as it composes them."""

    def __init__(self, text: str, file: str):
        super().__init__(text)
        self.file, self.nodes = file, 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        where = Location(self.file, event.start_mark.line + 1, event.start_mark.column + 1)
        if isinstance(event, yaml.AliasEvent):
            raise SourceError(where, f"alias *{event.anchor} is not allowed: write the value out "
                                     "(aliases and anchors are refused in config files)")
        if getattr(event, "anchor", None):
            raise SourceError(where, f"anchor &{event.anchor} is not allowed: write the value out "
                                     "(aliases and anchors are refused in config files)")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise SourceError(where, f"more than {MAX_NODES} values in one file: refused")
        return super().compose_node(parent, index)


def parse(text: str, file: str) -> Document:
    """Parse YAML text; raise :class:`SourceError` with a location on any syntax problem."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise SourceError(Location(file, 1, 1), f"file is {size} bytes, more than {MAX_BYTES}: refused")
    loader = _BoundedLoader(text, file)
    try:
        node = loader.get_single_node()
        doc = Document(file=file, data=None)
        if node is not None:
            doc.data = _build(doc, node, (), loader)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
        raise SourceError(loc, f"YAML syntax: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SourceError(Location(file, 1, 1), f"YAML: {exc}") from None
    finally:
        loader.dispose()


def load(path: str | Path) -> Document:
    path = Path(path)
    if path.stat().st_size > MAX_BYTES:  # before reading it into memory
        raise SourceError(Location(str(path), 1, 1), f"file is {path.stat().st_size} bytes, more than {MAX_BYTES}: refused")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(Location(str(path), 1, 1), f"not UTF-8 text: {exc}") from None
    return parse(text, str(path))


def pydantic_errors(doc: Document, exc: Any, prefix: Path_ = ()) -> SourceErrors:
    """Turn a pydantic ``ValidationError`` into located errors.

    ``prefix`` is where the validated object sits inside ``doc``.
    """
    errors = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        kind = err["type"]
        if kind == "extra_forbidden":
            reason = f"unknown key {loc[-1]!r}"
            errors.append(doc.error(prefix + loc, reason, at_key=True))
            continue
        if kind == "missing":
            where = ".".join(str(p) for p in loc[:-1]) or "top level"
            errors.append(doc.error(prefix + loc[:-1], f"missing key {loc[-1]!r} in {where}"))
            continue
        # Pydantic puts union/tag names in loc; keep only the parts that exist in the data.
        data_path = _existing_path(doc, prefix + loc)
        name = ".".join(str(p) for p in loc) or "value"
        errors.append(SourceError(doc.where(data_path), f"{name}: {err['msg']}"))
    return SourceErrors(errors)


def _existing_path(doc: Document, path: Path_) -> Path_:
    out: list[str | int] = []
    for part in path:
        if tuple(out) + (part,) in doc.value_at:
            out.append(part)
    return tuple(out)
