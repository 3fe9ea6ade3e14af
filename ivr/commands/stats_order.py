"""``ivr stats``' second part: order inversions across nodes and seat collisions, as text
(docs/cluster.md "Longest waiting caller across nodes"; the counting is queues/order.py).

On a platform of one node no caller can be overtaken by another node: the text says so instead
of printing a 0 that would read as measured.
"""

from __future__ import annotations

from typing import Any

from ivr.commands.common import text_width

ORDER_HEADING = ["日期 day", "队列 queue", "接通 answered", "倒置 inverted", "占比 share", "最大跳跃 largest jump"]
SINGLE_NODE = "跨节点排队顺序倒置 order inversions across nodes: 单节点平台，按定义不存在（未测量） one node: none can exist (not measured)"


def order_text(title: str, order: dict[str, Any]) -> str:
    """The inversions per day and queue, then the collisions per seat, of one window's report."""
    lines = [title]
    if not order["across_nodes"]:
        lines.append(SINGLE_NODE)
    else:
        lines.append(f"跨节点排队顺序倒置 order inversions across nodes ({', '.join(order['nodes'])}):")
        rows = [[r["day"], r["queue"], str(r["answered"]), str(r["inverted"]),
                 "-" if r["share"] is None else f"{r['share']:.1%}", f"{r['largest_jump_s']:.1f}s"]
                for r in order["queues"]]
        lines += ["  " + line for line in aligned([ORDER_HEADING, *rows])] if rows else ["  （无接通 no answers）"]
    seats = order["collisions"]
    lines.append("座席抢占冲突 seat collisions (486 at once: the seat taken on another node): "
                 + (", ".join(f"{seat} {n}" for seat, n in seats.items()) if seats else "无 none"))
    return "\n".join(lines)


def aligned(rows: list[list[str]]) -> list[str]:
    """Rows as columns: the first left-aligned, the others right-aligned (Chinese takes two columns)."""
    widths = [max(text_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(_pad(v, w, left=i == 0) for i, (v, w) in enumerate(zip(r, widths))) for r in rows]


def _pad(text: str, width: int, *, left: bool) -> str:
    fill = " " * (width - text_width(text))
    return text + fill if left else fill + text
