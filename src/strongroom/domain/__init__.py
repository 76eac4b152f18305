"""Pure rules of the domain (ARNs, names, staging labels, filters): no I/O, imports nothing of ours."""
