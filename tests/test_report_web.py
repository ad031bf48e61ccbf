"""The page's session report link: /api/report/<session>.pdf (and .csv, .html) behind the
login, the PDF a real one, the CSV with its BOM, an unknown session a clear 404."""

from __future__ import annotations

import urllib.error
import urllib.request

from agent.centre.web.app import STATIC
from tests.test_dashboard import Client, filled, web  # noqa: F401 - the fixtures


def fetch(c: Client, path: str) -> tuple[int, bytes, str, str]:
    req = urllib.request.Request(c.base + path)
    try:
        with c.opener.open(req, timeout=60) as resp:
            head = resp.headers
            return resp.status, resp.read(), head["Content-Type"], head["Content-Disposition"]
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers["Content-Type"], ""


def test_the_report_link_downloads_the_pdf_and_csv(web):  # noqa: F811
    c = Client(web.url)
    assert fetch(c, "/api/report/s-1.pdf")[0] == 401  # behind the login like every /api
    c.login("view")
    status, body, kind, disposition = fetch(c, "/api/report/s-1.pdf")
    assert status == 200 and kind == "application/pdf", body[:300]
    assert body.startswith(b"%PDF-") and len(body) > 5000
    assert disposition == 'attachment; filename="report-s-1.pdf"'
    status, body, kind, _ = fetch(c, "/api/report/s-1.csv")
    assert status == 200 and kind.startswith("text/csv")
    assert body.startswith(b"\xef\xbb\xbfsection,") and b"total_province" in body
    status, body, _, _ = fetch(c, "/api/report/s-1.html")
    assert status == 200 and "Báo cáo phiên họp s-1".encode() in body
    assert fetch(c, "/api/report/nosuch.pdf")[0] == 404
    assert fetch(c, "/api/report/s-1.exe")[0] == 404


def test_the_page_has_one_report_link():
    page = (STATIC / "index.html").read_text()
    assert page.count('id="report-link"') == 1 and 'data-i18n="page.report"' in page
    assert "/api/report/${encodeURIComponent(a.session)}.pdf" in (STATIC / "app.js").read_text()
