"""One flow file → a frozen :class:`Flow`, or every located problem in it.

Each node is validated on its own against its registered model, so a file with five bad
nodes gets five messages in one run. Graph problems (targets, reachability, endings, loops)
are checked afterwards by :mod:`ivr.flows.validate`, only on nodes that compiled.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from pydantic import Field, ValidationError

# Imported for their side effect: each registers its node type.
from ivr.flows import branch, collect, goto, hangup, menu, play, progress, queue, say, scope, session_prompt, setvars, transfer  # noqa: F401
from ivr.flows.base import NODE_TYPES, Digits, Node, NodeModel, Seconds
from ivr.core.yamlsource import Document, SourceError, pydantic_errors

NODE_ID = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"


class FlowHeader(NodeModel):
    """The keys of a flow file other than ``nodes``."""

    title: str = ""
    description: str = ""
    start: str | None = Field(None, description="first node; default: the first node in the file")
    budget: Seconds | None = Field(None, description="worst-case seconds from answer to a human (e.g. 15s)")
    human_key: Digits | None = Field("0", description="key that must reach a human from every menu; null to waive")
    after_notice: str | None = Field(
        None, description="where a merged number's caller goes on after its transitional notice, which greets them "
        "instead of the flow's own greeting (it names 12345 already); default: start",
    )


@dataclass(frozen=True)
class Flow:
    """A compiled flow: typed nodes plus the document they came from (for located errors)."""

    name: str
    header: FlowHeader
    start: str
    nodes: Mapping[str, Node]
    source: Document = field(compare=False, repr=False)

    @property
    def after_notice(self) -> str:
        """The first node after a merged number's transitional notice."""
        return self.header.after_notice or self.start

    @property
    def file(self) -> str:
        return self.source.file

    def error(self, node: str | None, path: tuple[str | int, ...], reason: str, *, at_key: bool = False) -> SourceError:
        """A located error about the flow (``node=None``) or a node's field."""
        full = (("nodes", node) if node else ()) + path
        return self.source.error(full, reason, at_key=at_key)


def suggest(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def compile_flow(doc: Document, name: str) -> tuple[Flow | None, list[SourceError]]:
    """Build the typed flow; the graph is checked separately (see ``validate.check_flow``)."""
    data = doc.data
    if not isinstance(data, dict):
        return None, [doc.error((), "a flow file must be a mapping with a 'nodes' key")]
    errors: list[SourceError] = []
    raw_nodes = data.get("nodes")
    header_data = {k: v for k, v in data.items() if k != "nodes"}
    header: FlowHeader | None = None
    try:
        header = FlowHeader.model_validate(header_data)
    except ValidationError as exc:
        errors.extend(pydantic_errors(doc, exc).errors)
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        errors.append(doc.error(("nodes",), "a flow needs a non-empty 'nodes' mapping (node id → node)"))
        return None, errors
    nodes: dict[str, Node] = {}
    for node_id, raw in raw_nodes.items():
        node, problems = _compile_node(doc, node_id, raw)
        errors.extend(problems)
        if node is not None:
            nodes[node_id] = node
    if header is None:
        return None, errors
    start = header.start or next(iter(raw_nodes))
    if start not in raw_nodes:
        errors.append(doc.error(("start",), f"start {start!r} is not a node in this flow{suggest(start, raw_nodes)}"))
        return None, errors
    if header.after_notice is not None and header.after_notice not in raw_nodes:
        errors.append(doc.error(("after_notice",), f"after_notice {header.after_notice!r} is not a node in this flow"
                                                   f"{suggest(header.after_notice, raw_nodes)}"))
        return None, errors
    return Flow(name, header, start, MappingProxyType(nodes), doc), errors


def _compile_node(doc: Document, node_id: str, raw: Any) -> tuple[Node | None, list[SourceError]]:
    path = ("nodes", node_id)
    if not re.match(NODE_ID, node_id):
        return None, [doc.error(path, f"node id {node_id!r} must match {NODE_ID}", at_key=True)]
    if not isinstance(raw, dict):
        return None, [doc.error(path, f"node {node_id!r} must be a mapping with a 'type'")]
    kind = raw.get("type")
    if kind not in NODE_TYPES:
        reason = f"unknown node type {kind!r}{suggest(str(kind), NODE_TYPES)}; known: {', '.join(sorted(NODE_TYPES))}"
        if kind is None:
            reason = f"node {node_id!r} has no 'type'; known: {', '.join(sorted(NODE_TYPES))}"
        return None, [doc.error(path + ("type",), reason)]
    try:
        return NODE_TYPES[kind].model_validate(raw), []
    except ValidationError as exc:
        return None, pydantic_errors(doc, exc, prefix=path).errors


def flow_json_schema() -> dict[str, Any]:
    """JSON Schema of a flow file, for editors (VS Code's YAML extension) and ``ivr schema``."""
    from typing import Annotated, Union

    from pydantic import TypeAdapter, create_model

    node_union = Annotated[Union[tuple(NODE_TYPES[k] for k in sorted(NODE_TYPES))], Field(discriminator="type")]  # type: ignore[valid-type]
    file_model = create_model(
        "FlowFile",
        __base__=FlowHeader,
        nodes=(dict[str, node_union], Field(description="node id → node; the first node starts the call")),  # type: ignore[valid-type]
    )
    schema = TypeAdapter(file_model).json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "12345 IVR flow"
    return schema
