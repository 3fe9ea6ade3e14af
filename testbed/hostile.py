"""Hostile config drafts the security tests post (issue 17): YAML alias bombs and a number
title that would inject dialplan. One place, so the unit, console and real-Asterisk tests and
the benchmark attack with the very same bytes."""

from __future__ import annotations


def alias_bomb(levels: int, fanout: int) -> str:
    """A "billion laughs" bomb: ``levels`` lines, each a list of ``fanout`` aliases of the line above,
    so a loader that expands aliases builds ``fanout ** levels`` values from a few hundred bytes."""
    lines = ["l0: &l0 lol"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * fanout)}]")
    return f"# {levels} levels of {fanout} aliases\n" + "\n".join(lines) + "\n"


ISSUE_BOMB = alias_bomb(7, 10)  # the issue's: 7 nested levels of 10 aliases, under 400 bytes (10**7 values)
KIB_BOMB = alias_bomb(10, 22)  # under 1 KiB: 22**10 ≈ 2.7e13 values

# A number title that closes the comment's line and opens contexts of its own (issue 17, finding 4).
INJECTED_TITLE = ("国家税务总局\n[from-agents]\nexten => _X.,1,Dial(PJSIP/${EXTEN}@tax)\n[ivr-injected]\n"
                  "exten => s,1,System(touch /tmp/ivr-injected)\n; ")


def inject_title(plan_text: str, number: str) -> str:
    """``plan_text`` (a plan file or numbers.yaml) with ``number``'s title replaced by
    :data:`INJECTED_TITLE`, written as a YAML double-quoted string (``\\n`` escapes)."""
    quoted = INJECTED_TITLE.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    start = plan_text.index(f'"{number}":')
    title = plan_text.index("title: ", start) + len("title: ")
    end = min(i for i in (plan_text.find(",", title), plan_text.find("}", title), plan_text.find("\n", title)) if i > 0)
    return plan_text[:title] + f'"{quoted}"' + plan_text[end:]
