"""Prometheus remote_write of the per-school series (docs/remote-write.md).

- ``encode``: the WriteRequest protobuf, snappy-compressed;
- ``series``: what a stored record and a state snapshot become as samples;
- ``queue``: the buffer in the database (claimed, released, deleted per batch);
- ``sender``: the background loop that sends, backs off and counts.
"""
