"""Call recording (issue 21): the policy as data (``rules``), the files' life after the call
(``store``: compression, checksums, verification, retention, the disk's headroom), the engine's
post-call worker (``worker``) and ``ivr recordings`` (``cli``). The dialplan that records is
rendered by :mod:`ivr.asterisk_conf.recording`; docs/recording.md tells the whole story."""
