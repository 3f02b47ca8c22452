"""``GET /api/v1/events``: task changes as server-sent events, for live views such as the dashboard."""
