"""The read side: exact analytics statements over raw rows and day rollups."""
