"""The hotline office's periodic reports (日报、周报、月报、年报) and their hot spots (热点).

- :mod:`reports.model`: periods, the counts per line, queue, request type and department, hot spots;
- :mod:`reports.files`: the report as CSV and XLSX (a sheet and a bar chart per view);
- :mod:`reports.tallies`: day tallies kept in Redis, recounted when a ticket of the day changed;
- :mod:`reports.read`: a period's report from its day tallies and the rest of its tickets;
- :mod:`reports.cli`: ``ivr stats report``; :mod:`reports.views`: the console's 统计报表 page.
"""
