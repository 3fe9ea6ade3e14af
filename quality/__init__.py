"""Quality inspection (质检, issue 21 item 4): supervisors score recorded calls against a rubric
(``config/quality.yaml``); the scores live on the ticket; averages per agent and queue and a daily
random sample of calls to inspect are read from the tickets (docs/quality.md)."""
