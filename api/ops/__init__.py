"""Operating the server: the embedded PostgreSQL, import and export, the JSON Schemas, the demo data."""
