"""The number plan's home (the lines citizens dial, their flows and compliance rules).

:mod:`ivr.numbers.model` holds the plan's entries, :mod:`ivr.numbers.routing` the pure rules of
what a dialed number runs. The package imports none of its modules (issue 18).
"""
