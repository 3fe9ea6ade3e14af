"""The ``tracking:`` section of the configuration: where Asterisk's own logs are, and how
long a vanished call is waited for (owned here, composed by :mod:`ivr.config.settings`)."""

from __future__ import annotations

from pydantic import Field

from ivr.core.strict import Strict


class TrackingSettings(Strict):
    """Following calls over AMI and finishing them from Asterisk's own logs."""

    cdr_file: str = Field(
        "/var/log/asterisk/cdr-custom/Master.csv",
        description="Asterisk's CDR file (cdr_custom, see asterisk-conf/cdr_custom.conf) as the engine sees it",
    )
    queue_log: str = Field("/var/log/asterisk/queue_log", description="Asterisk's queue_log as the engine sees it")
    lost_after: float = Field(
        30.0, gt=0, description="seconds a call that vanished without a CDR is waited for before it is closed as lost",
    )
