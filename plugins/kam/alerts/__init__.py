"""The emails people act on: one module per alert type (overdue, stop_shipments,
reviews_due, finance_summary), built from the published marts with `lists` and `render`,
sent once each by `delivery`."""
