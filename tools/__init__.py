"""Developer tools: the synthetic ERP, the benchmark and the demo. The runtime package
(plugins/kam) never imports them; they import it."""
