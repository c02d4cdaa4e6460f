"""Client-facing JSON types: decoded and validated once, at the edge."""
