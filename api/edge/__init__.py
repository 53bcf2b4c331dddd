"""The HTTP edge: what every request passes before and after a front end (identity, limits, CORS, logs, drain)."""
