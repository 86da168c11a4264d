"""``go_map``: a Go map never shrinks (``native/go_map``; 100 Go Mistakes #28).

Each cycle fills a ``map[int][128]byte`` and deletes every key.  ``kept`` empties and
refills the same map: its buckets stay (the article: 461 MB after 1M inserts, 293 MB
after deleting them all and a GC); ``rebuilt`` replaces it with a new map;
``rebuilt_free`` also calls ``debug.FreeOSMemory``.  One unit = one fill/empty cycle;
every cycle ends by releasing all entries, so what stays is retention.
"""

VARIANTS = ("rebuilt", "rebuilt_free", "kept")
BASELINE = "rebuilt"
UNIT = "cycle"
KEY_METRICS = ("go_heap_alloc_bytes", "filled_heap_alloc_bytes")
RELEASES = True
SCALED_PARAMS = ("entries",)
DEFAULTS = {"entries": 1_000_000, "cycles": 5}
LENGTH_PARAM = "cycles"
COMMAND = "{binary} -variant {variant} -entries {entries} -cycles {cycles}"
RUNTIME_HEAP = "Go"
