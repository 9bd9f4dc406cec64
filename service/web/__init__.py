"""The web dashboard: server-rendered pages (Jinja2) whose small scripts draw what the JSON routes
answer, with Plotly served from its installed wheel."""
