"""The session report (`centre report`, the page's report link), one job per module:

- attendance.py: attendance per site, tier, district and province (also the page's line);
- readiness.py: each site's condition at T-60, T-15 and the start, and the fixes between;
- session.py: drop-outs, incidents, and the whole report's model;
- text.py, export.py, document.py: the report as text, JSON/CSV, and HTML/PDF;
- read.py: the rows from the centre's database (the only module that reads it).
"""

from agent.centre.report.attendance import (
    SessionReport,
    SiteInfo,
    SiteLine,
    Total,
    render,
    session_report,
    site_line,
    to_csv,
)

__all__ = [
    "SessionReport",
    "SiteInfo",
    "SiteLine",
    "Total",
    "render",
    "session_report",
    "site_line",
    "to_csv",
]
