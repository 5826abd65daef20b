"""The read side of each store: what ``query``, ``quality`` and ``verify --probe`` ask.

``base`` is what every store shares (typed results, the preset names, the :class:`Store`
interface); ``timestream`` is the first store. The lake (Athena over S3 Parquet) is the
next one: a module beside it implementing the same interface.
"""
