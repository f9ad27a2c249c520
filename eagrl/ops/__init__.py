"""Tools that drive the pipeline from outside (``eagrl configure``, ``regress``, ``runtime-report``, ``tjh-tables``)."""
