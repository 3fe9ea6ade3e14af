"""A report as the files an office files: CSV (one table per view, one after another) and XLSX
(a sheet and a bar chart per view), with Mandarin headings and local times.

Names in a report come from staff and departments (a department's title, a queue's name), so a
name that starts like a formula stays text: quoted with a leading ' in the CSV (as the ticket
export does, tickets/export.py), stored as a string cell in the XLSX. Counts are numbers in the
XLSX (sums and charts work); shares are fractions with a percent format.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterator

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.chart import BarChart, Reference
from openpyxl.worksheet.worksheet import Worksheet

from reports.model import COLUMNS, EVERY_TICKET, SHARES, TOTAL, VIEWS, HotSpot, Report, Row
from tickets.export import ENCODING, FORMULA_STARTS

HOT_HEADINGS = ("类别", "名称", "本期", "上期", "增量", "增长倍数")
HOT_VIEW_LABELS = {"type": "诉求类型", "department": "承办单位"}
NEW = "新增"  # a hot spot the previous period did not have at all


def hot_row(h: HotSpot) -> list[Any]:
    return [HOT_VIEW_LABELS[h.view], h.name, h.current, h.previous, h.increase,
            NEW if h.ratio is None else round(h.ratio, 1)]


def view_rows(report: Report, view: str) -> Iterator[tuple[str, Row]]:
    """A view's rows, the busiest first, then the total."""
    yield from report.tally.sorted(view)
    if view in EVERY_TICKET:  # departments and sessions hold only some of the tickets
        yield TOTAL, report.tally.total


def values(row: Row) -> list[Any]:
    return [getattr(row, name) for name, _h in COLUMNS]


def heading(view: str) -> list[str]:
    return [VIEWS[view], *(h for _n, h in COLUMNS)]


def about(report: Report) -> list[list[str]]:
    p = report.period
    return [["12345 热线统计报表", p.title],
            ["统计时段", f"{p.start:%Y-%m-%d %H:%M} – {p.end:%Y-%m-%d %H:%M}（{p.zone}）"],
            ["生成时间", f"{report.made.astimezone():%Y-%m-%d %H:%M:%S}"],
            ["热点规则", "环比增长达到倍数且增量达到下限的诉求类型与承办单位"]]


# --- CSV --------------------------------------------------------------------------------------

def _text(value: Any) -> Any:
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    if isinstance(value, float):
        return str(round(value, 4))  # 0.4286, 3.0: shares as fractions, as in the XLSX
    return "" if value is None else value


def csv_bytes(report: Report) -> bytes:
    """The whole report as CSV with the byte order mark Excel needs to read UTF-8."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    tables: list[tuple[str, list[str], list[list[Any]]]] = [
        ("热点", list(HOT_HEADINGS), [hot_row(h) for h in report.hot])]
    tables += [(VIEWS[v], heading(v), [[name, *values(row)] for name, row in view_rows(report, v)]) for v in report.tally.shown()]
    for line in about(report):
        w.writerow([_text(c) for c in line])
    for title, head, rows in tables:
        w.writerow([])
        w.writerow([f"【{title}】"])
        w.writerow(head)
        w.writerows([_text(c) for c in r] for r in rows)
    return out.getvalue().encode(ENCODING)


# --- XLSX -------------------------------------------------------------------------------------

def _put(sheet: Worksheet, row: int, col: int, value: Any, share: bool = False) -> None:
    cell: Cell = sheet.cell(row=row, column=col)
    if isinstance(value, str):
        cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
        cell.data_type = "s"  # never a formula, whatever the text starts with
    else:
        cell.value = value
        if share:
            cell.number_format = "0.0%"


def _table(sheet: Worksheet, head: list[str], rows: list[list[Any]], shares: frozenset[int] = frozenset()) -> None:
    for c, h in enumerate(head, 1):
        _put(sheet, 1, c, h)
    for r, line in enumerate(rows, 2):
        for c, v in enumerate(line, 1):
            _put(sheet, r, c, v, share=c in shares)
    sheet.freeze_panes = "B2"
    sheet.column_dimensions["A"].width = 24


def _chart(sheet: Worksheet, title: str, names: int, first_col: int, last_col: int, rows: int) -> None:
    """A bar chart of columns first..last (counts) over the names in column ``names``, rows 2..rows+1."""
    if rows < 1:
        return
    chart = BarChart()
    chart.title = title
    chart.y_axis.title = "件数"
    chart.add_data(Reference(sheet, min_col=first_col, max_col=last_col, min_row=1, max_row=rows + 1), titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=names, min_row=2, max_row=rows + 1))
    chart.width, chart.height = 24, 10
    sheet.add_chart(chart, f"A{rows + 4}")


def xlsx_bytes(report: Report) -> bytes:
    """The report as a workbook: 说明, 热点, then one sheet per view, each with its bar chart."""
    book = Workbook()
    info = book.active
    assert info is not None
    info.title = "说明"
    for r, line in enumerate(about(report), 1):
        for c, v in enumerate(line, 1):
            _put(info, r, c, v)
    info.column_dimensions["A"].width, info.column_dimensions["B"].width = 16, 60
    hot = book.create_sheet("热点")
    _table(hot, list(HOT_HEADINGS), [hot_row(h) for h in report.hot])
    _chart(hot, f"{report.period.title} 热点：本期与上期", 2, 3, 4, len(report.hot))
    hot.column_dimensions["B"].width = 24
    shares = frozenset(i for i, (name, _h) in enumerate(COLUMNS, 2) if name in SHARES)
    for view in report.tally.shown():
        label = VIEWS[view]
        sheet = book.create_sheet(label)
        rows = [[name, *values(row)] for name, row in view_rows(report, view)]
        _table(sheet, heading(view), rows, shares)
        named = len(report.tally.views[view])  # the chart leaves the total out
        _chart(sheet, f"{report.period.title} {label}：来电、进入排队与人工接听", 1, 2, 4, named)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
