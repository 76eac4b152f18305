"""Who is calling: SigV4 verification and the principals it yields."""
