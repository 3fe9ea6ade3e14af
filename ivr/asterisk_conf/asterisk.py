"""asterisk.conf: the directories of this Asterisk and its options."""

from __future__ import annotations

from ivr.asterisk_conf.options import RenderOptions
from ivr.core.conftext import word


def asterisk_conf(o: RenderOptions, maxcalls: int | None = None) -> str:
    """``maxcalls``: a cluster node's call cap (beyond it Asterisk refuses the call, and the proxy
    tries the next node)."""
    d = o.directories
    cap = f"maxcalls = {int(maxcalls)}\n" if maxcalls is not None else ""
    # Not `[directories](!)`: the stock template marker makes Asterisk ignore these paths.
    return f"""[directories]
astetcdir => {d.etc}
astmoddir => {d.modules}
astvarlibdir => {d.varlib}
astdbdir => {d.db}
astkeydir => {d.keys}
astdatadir => {d.data}
astagidir => {d.data}/agi-bin
astspooldir => {d.spool}
astrundir => {d.run}
astlogdir => {d.log}
astsbindir => /usr/sbin

[options]
systemname = {word(o.system_name)}
defaultlanguage = zh
transmit_silence = yes
hideconnect = yes
{cap}"""
