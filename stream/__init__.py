"""``rtplot stream``: Yahoo's live trades folded into the minute in progress."""
