"""The store: SQLite schema, writes and queries; the source of truth for every trial, node and call."""
