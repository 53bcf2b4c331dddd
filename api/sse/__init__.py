"""The server-sent events front end: the live feed as `text/event-stream` at `/coordination_events`."""
