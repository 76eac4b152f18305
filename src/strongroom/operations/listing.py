"""ListSecrets (spec §8), and the filter/sort/paging parsing BatchGetSecretValue shares."""

from __future__ import annotations

from typing import Any, cast

from strongroom.errors import InvalidNextTokenException, InvalidParameterException
from strongroom.operations import paging
from strongroom.operations.context import Context
from strongroom.operations.lifecycle import describe_entry
from strongroom.storage.base import ListQuery, SecretRow, SortBy

LIST_DEFAULT_MAX = 100  # AWS's default is UNCONFIRMED; the emulators use 100 (spec §8)
_SORT_FIELDS: dict[str, str] = {
    "created-date": "created_at",
    "last-changed-date": "last_changed_at",
    "last-accessed-date": "last_accessed_at",
    "name": "name",
}


def _filters(request: dict[str, Any]) -> list[tuple[str, list[str]]]:
    out = []
    for item in request.get("Filters") or []:
        key, values = item.get("Key"), item.get("Values")
        # Texts from the emulators, UNCONFIRMED (spec §15.7).
        if key is None:
            raise InvalidParameterException("Invalid filter key")
        if not values:
            raise InvalidParameterException(f"Invalid filter values for key: {key}")
        out.append((key, list(values)))
    return out


def list_query(
    ctx: Context, request: dict[str, Any], *, default_limit: int, kind: str
) -> ListQuery:
    sort_by = cast("SortBy", request.get("SortBy") or "created-date")
    descending = request.get("SortOrder") == "desc"
    after = None
    if request.get("NextToken"):
        cursor = paging.decode(ctx.token_key, kind, request["NextToken"])
        shape_ok = isinstance(cursor, list) and len(cursor) == 4  # noqa: PLR2004 - see page_token
        if not (shape_ok and cursor[:2] == [sort_by, descending]):
            # A token from a request with another sort order would skip or repeat rows.
            raise InvalidNextTokenException(paging.INVALID_TOKEN)
        after = (cursor[2], int(cursor[3]))
    return ListQuery(
        account_id=ctx.account_id,
        region=ctx.region,
        filters=_filters(request),
        sort_by=sort_by,
        descending=descending,
        include_planned_deletion=bool(request.get("IncludePlannedDeletion")),
        now=ctx.clock(),
        after=after,
        # One row more than the page tells whether there is a next page.
        limit=(request.get("MaxResults") or default_limit) + 1,
    )


def page_token(ctx: Context, query: ListQuery, rows: list[SecretRow], *, kind: str) -> str | None:
    """NextToken after ``rows`` (fetched with ``query.limit``, one more than the page size)."""
    if len(rows) < query.limit:
        return None
    last = rows[query.limit - 2]
    cursor = [query.sort_by, query.descending, getattr(last, _SORT_FIELDS[query.sort_by]), last.pk]
    return paging.encode(ctx.token_key, kind, cursor)


def list_secrets(ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
    """ListSecrets: filtered, sorted, keyset-paged; values are never listed."""
    query = list_query(ctx, request, default_limit=LIST_DEFAULT_MAX, kind="list")
    with ctx.store.read() as tx:
        rows = tx.list_secrets(query)
        page = rows[: query.limit - 1]
        pks = [row.pk for row in page]
        labels = tx.labels_of(pks)
        tags = tx.tags_of([row.pk for row in page if row.tags_ever_set])
    entries = [
        describe_entry(row, labels[row.pk], tags.get(row.pk, []), "SecretVersionsToStages")
        for row in page
    ]
    return {"SecretList": entries, "NextToken": page_token(ctx, query, rows, kind="list")}
