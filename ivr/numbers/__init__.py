"""The number plan's home (the lines citizens dial, their flows and compliance rules).

Empty for now: the model and routing move here from ivr.config and ivr.flows.flowset
(issue 18, work packages WP1 and WP5).
"""
