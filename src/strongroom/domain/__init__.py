"""Pure rules of the domain (ARNs, names, staging labels, filters).

No I/O; imports nothing of ours but ``strongroom.errors``, the shared vocabulary of failures.
"""
