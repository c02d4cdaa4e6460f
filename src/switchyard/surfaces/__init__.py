"""Client-facing protocols other than Chat Completions, as pure translations to and from the
canonical chat types, so every surface shares one routing, execution and accounting path."""
