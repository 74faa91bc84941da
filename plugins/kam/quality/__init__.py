"""Great Expectations at every hand-over: the suites (suites) and the raw and marts gates (gates)."""
