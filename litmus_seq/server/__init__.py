"""``litmus-seq serve``: the operator page and the HTTP API of a station (:mod:`.app`, :mod:`.station`)."""
