"""The front's own tables: users, and host names and templates set through the API."""
