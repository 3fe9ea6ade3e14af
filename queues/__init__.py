"""Seats: the 7×24 general queue, expert queues and the agents who answer on softphones.

- :mod:`queues.model`: agents and queues as admins configure them, and the route that hands a
  call from the IVR to a queue.

Hotline logic only; Asterisk's queues.conf is rendered by :mod:`ivr.asterisk_conf`. Overflow,
agent state, announcements, callbacks and KPIs come with the seats issue.
"""
