"""Does a resource policy grant broad access? For BlockPublicPolicy and ValidateResourcePolicy.

AWS asks Zelkova, an SMT-based reasoner; we apply a conservative syntactic rule instead.
An Allow statement grants broad access when

1. its principal is broad: "*" or {"AWS": "*"}, any NotPrincipal (it covers everyone not
   listed), any Federated principal (an identity provider's users are not known principals),
   or -- when `cross_account_is_public` -- a principal of another account; and
2. no condition restricts it to known principals or accounts. A restricting condition names
   one of the keys below under StringEquals, StringEqualsIgnoreCase, StringLike, ArnEquals or
   ArnLike, without ForAllValues:/ForAnyValue: or IfExists (which hold when the key is
   absent), and every value is literal: no wildcard, no policy variable.

Service principals ("secretsmanager.amazonaws.com") are not broad. Deny statements never
grant. The rule may call a policy broad that Zelkova would pass, never the reverse for the
cases above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.auth.conditions import Condition, Wild, has_variables

if TYPE_CHECKING:
    from strongroom.auth.policy import Policy, PrincipalSet, Statement

RESTRICTING_KEYS = frozenset(
    {
        "aws:principalaccount",
        "aws:principalarn",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:principalorgid",
        "aws:userid",
        "aws:username",
    }
)
RESTRICTING_OPERATORS = frozenset(
    {"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike"}
)


def _restricts(condition: Condition) -> bool:
    return (
        condition.key in RESTRICTING_KEYS
        and condition.operator in RESTRICTING_OPERATORS
        and condition.set_operator is None
        and not condition.if_exists
        and bool(condition.values)
        and not any(
            has_variables(value) or any(isinstance(part, Wild) for part in value)
            for value in condition.values
        )
    )


def _broad_principal(
    principals: PrincipalSet, account_id: str, *, cross_account_is_public: bool
) -> bool:
    if principals.everyone or principals.federated:
        return True
    if not cross_account_is_public:
        return False
    other_accounts = principals.accounts - {account_id}
    other_arns = {arn for arn in principals.arns if arn.split(":")[4] != account_id}
    return bool(other_accounts or other_arns)


def _statement_is_broad(
    statement: Statement, account_id: str, *, cross_account_is_public: bool
) -> bool:
    if statement.effect != "Allow" or statement.principals is None:
        return False
    broad = statement.not_principal or _broad_principal(
        statement.principals, account_id, cross_account_is_public=cross_account_is_public
    )
    return broad and not any(_restricts(condition) for condition in statement.conditions)


def grants_public_access(
    policy: Policy, account_id: str, *, cross_account_is_public: bool = True
) -> bool:
    """True when an Allow statement reaches beyond known principals (module docstring)."""
    return any(
        _statement_is_broad(st, account_id, cross_account_is_public=cross_account_is_public)
        for st in policy.statements
    )
