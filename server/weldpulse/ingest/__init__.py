"""The write path of a hit: limits, enrichment, visitor ids, the durable log and its applier."""
