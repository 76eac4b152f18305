"""One plain function per AWS action, grouped by resource. Each runs in one storage transaction."""
