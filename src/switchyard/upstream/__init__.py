"""The pooled HTTP client used for every upstream call, and its exception boundary."""
