"""The stores: schema, engines and migrations, the event writer, day rollups and accounts."""
