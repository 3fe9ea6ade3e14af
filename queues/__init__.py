"""Seats: the 7×24 general queue, expert queues and the agents who answer on softphones.

- :mod:`queues.model`: agents (skills with penalties) and queues (hours, wrap-up, announcements,
  overflow) as admins configure them, and the route that hands a call from the IVR to a queue.
- :mod:`queues.policy`: which queue a call may wait in now (expert hours on the working-day calendar).
- :mod:`queues.agents`: the seat board — each agent's state from Asterisk's queue-member facts.

Those are hotline logic only. The feature's adapters sit beside them, one layer up
(docs/architecture.md): :mod:`queues.store` (seat state in Redis), :mod:`queues.seat_control`
(seat state and agent actions over AMI), :mod:`queues.follower` (waiting callers and desks into
Redis); on top, :mod:`queues.cli` (``ivr agents``). Asterisk's queues.conf and dialplan are
rendered by :mod:`ivr.asterisk_conf`. See docs/seats.md.
"""
