"""asterisk.conf: the directories of this Asterisk and its options."""

from __future__ import annotations

from ivr.asterisk_conf.options import RenderOptions


def asterisk_conf(o: RenderOptions) -> str:
    d = o.directories
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
systemname = {o.system_name}
defaultlanguage = zh
transmit_silence = yes
hideconnect = yes
"""
