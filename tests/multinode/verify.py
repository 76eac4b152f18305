"""The invariants after a load, through the API of every live node and in the database."""

from __future__ import annotations

from typing import Any

from tests.multinode.cluster import Cluster
from tests.multinode.load import CURRENT, PREVIOUS, Ledger, stage_violations


def all_versions(client: Any, secret: str) -> dict[str, list[str]]:
    """Every version of ``secret`` (deprecated ones too), page by page: id -> labels."""
    versions: dict[str, list[str]] = {}
    kwargs: dict[str, Any] = {"SecretId": secret, "IncludeDeprecated": True, "MaxResults": 20}
    while True:
        page = client.list_secret_version_ids(**kwargs)
        for entry in page["Versions"]:
            assert entry["VersionId"] not in versions, f"{entry['VersionId']} listed twice"
            versions[entry["VersionId"]] = sorted(entry.get("VersionStages", []))
        if not page.get("NextToken"):
            return versions
        kwargs["NextToken"] = page["NextToken"]


def api_problems(cluster: Cluster, ledger: Ledger) -> list[str]:
    """Every live node tells the same story, and it keeps every acknowledged write."""
    problems: list[str] = []
    views = {}  # node -> secret -> every version's labels
    for node in cluster.live_nodes():
        views[node.name] = node_view(cluster.client(node, read_timeout=30), node.name, ledger)
        problems += values_problems(
            cluster.client(node, read_timeout=30), node.name, ledger, views[node.name]
        )
    first, *others = views.values()
    problems += [
        f"nodes disagree on the versions of {s}" for o in others for s in o if o[s] != first[s]
    ]
    for secret, listed in first.items():
        problems += [
            f"{secret}: version {t} was never sent" for t in listed if t not in ledger.sent
        ]
        problems += [
            f"acknowledged {token} of {secret} is not listed"
            for token, (owner, _) in ledger.acknowledged.items()
            if owner == secret and token not in listed
        ]
    return problems


def node_view(client: Any, name: str, ledger: Ledger) -> dict[str, dict[str, list[str]]]:
    """Every version of every secret, as ``name`` lists them; staging invariants asserted."""
    view = {}
    for secret in ledger.secrets:
        described = client.describe_secret(SecretId=secret)["VersionIdsToStages"]
        assert not stage_violations(secret, described), (name, described)
        listed = all_versions(client, secret)
        labelled = {v: s for v, s in listed.items() if s}
        assert labelled == {v: sorted(s) for v, s in described.items()}, (name, secret)
        current = client.get_secret_value(SecretId=secret)
        assert CURRENT in described.get(current["VersionId"], []), (name, secret)
        view[secret] = listed
    return view


def values_problems(
    client: Any, name: str, ledger: Ledger, view: dict[str, dict[str, list[str]]]
) -> list[str]:
    """Each acknowledged put reads back with its value; each stored one with a value sent."""
    problems = [
        f"acknowledged {token} of {secret} via {name}: wrong value"
        for token, (secret, value) in sorted(ledger.acknowledged.items())
        if client.get_secret_value(SecretId=secret, VersionId=token).get("SecretString") != value
    ]
    for token, (secret, values) in sorted(ledger.sent.items()):
        if token in ledger.acknowledged or token not in view[secret]:
            continue
        # Sent, never acknowledged (its answer was lost), yet stored: one of the values sent.
        got = client.get_secret_value(SecretId=secret, VersionId=token)
        if got.get("SecretString") not in values:
            problems.append(f"unacknowledged {token} of {secret} via {name}: a value never sent")
    return problems


def database_problems(cluster: Cluster, ledger: Ledger) -> list[str]:
    """The same invariants, read straight from the tables."""
    problems: list[str] = []
    with cluster.connect() as conn:
        duplicates = conn.execute(
            "SELECT secret_pk, version_id, count(*) FROM secret_versions"
            " GROUP BY secret_pk, version_id HAVING count(*) > 1"
        ).fetchall()
        problems += [f"version {v} of secret {s} stored {n} times" for s, v, n in duplicates]
        strays = conn.execute(
            "SELECT l.secret_pk, l.stage FROM version_stages l"
            " JOIN secret_versions v ON v.pk = l.version_pk WHERE v.secret_pk <> l.secret_pk"
        ).fetchall()
        problems += [f"label {g} of secret {s} is on another secret's version" for s, g in strays]
        empty = conn.execute("SELECT count(*) FROM secret_versions WHERE sealed IS NULL").fetchone()
        if empty and empty[0]:
            problems.append(f"{empty[0]} versions without a value")
        rows = conn.execute(
            "SELECT s.name, v.version_id, l.stage FROM secrets s"
            " JOIN secret_versions v ON v.secret_pk = s.pk"
            " LEFT JOIN version_stages l ON l.version_pk = v.pk"
        ).fetchall()
    stored: dict[str, dict[str, list[str]]] = {}
    for name, version_id, stage in rows:
        labels = stored.setdefault(name, {}).setdefault(version_id, [])
        if stage is not None:
            labels.append(stage)
    if sorted(stored) != sorted(ledger.secrets):
        problems.append(f"the database holds secrets {sorted(stored)}")
    for name, versions in stored.items():
        problems += stage_violations(f"{name} in the database", versions)
        for token, (secret, _) in ledger.acknowledged.items():
            if secret == name and token not in versions:
                problems.append(f"acknowledged {token} of {name} is not in the database")
        previous = [v for v, s in versions.items() if PREVIOUS in s]
        problems += [
            f"{name}: AWSPREVIOUS {v} was never sent" for v in previous if v not in ledger.sent
        ]
    return problems
