"""Moved to :mod:`ivr.core.conftext` (issue 18): this module only keeps the old import path working
for the modules other work packages are still splitting; new code imports from ``ivr.core.conftext``."""

from ivr.core.conftext import (
    BREAKING as BREAKING,
    FILE_PATH as FILE_PATH,
    HOSTNAME as HOSTNAME,
    Host as Host,
    MUSIC_CLASS as MUSIC_CLASS,
    PjsipMatch as PjsipMatch,
    SIP_URI as SIP_URI,
    SPECIAL as SPECIAL,
    SipUri as SipUri,
    Title as Title,
    UnsafeValue as UnsafeValue,
    WORD as WORD,
    arg as arg,
    breaking as breaking,
    comment as comment,
    guard as guard,
    host as host,
    line_breaks as line_breaks,
    pjsip_match as pjsip_match,
    plain_title as plain_title,
    secret as secret,
    sip_uri as sip_uri,
    value as value,
    word as word,
)
