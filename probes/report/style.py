"""The stylesheet of the self-contained HTML pages (report.html, trend.html): one look, no pandas import."""

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1250px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.t,th.t{text-align:left}td.bad{background:#fde2e2}
.note{background:#fff7d6;border-left:4px solid #e0b000;padding:.4em .8em;margin:.4em 0}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}.scroll{overflow-x:auto}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.85em}
.verdict{border:2px solid #2ca02c;border-radius:6px;padding:.2em 1em .8em;margin:1em 0;background:#f3fbf3}
.verdict.bad{border-color:#d62728;background:#fdf3f3}
.pass{color:#1a7f1a;font-weight:bold}.fail{color:#c62828;font-weight:bold}
"""
