"""The write path of a hit: limits, enrichment, visitor ids and the group-committing collector."""
