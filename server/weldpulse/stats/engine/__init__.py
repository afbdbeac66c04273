"""The query engine behind Query: parse → validate → plan → build SQL → run → shape."""
