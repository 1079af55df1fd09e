"""Change report between two transfers of one study: datasets by key, ARD numbers that moved."""
