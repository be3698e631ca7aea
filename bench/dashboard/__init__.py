"""The results dashboard: a local web page over the results database, and the static report.

``data`` reads the database (read-only) and builds the JSON the page shows; ``server`` serves it
with the standard library's HTTP server; ``static/`` holds the one page (plain JS + plotly.js).
"""
