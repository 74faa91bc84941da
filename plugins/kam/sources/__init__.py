"""Where rows come from: landing files, ERP databases, and the synthetic ERP."""
