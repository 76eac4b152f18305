"""IAM actions (users, access keys, policies, roles), one function per action; the
registry (``registry.py``) names them and says what each is authorized on."""
