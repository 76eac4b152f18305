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
    views: dict[str, dict[str, dict[str, list[str]]]] = {}  # node -> secret -> labels
    for node in cluster.live_nodes():
        client = cluster.client(node, read_timeout=30)
        views[node.name] = {}
        for secret in ledger.secrets:
            described = client.describe_secret(SecretId=secret)["VersionIdsToStages"]
            problems += stage_violations(f"{secret} via {node.name}", described)
            listed = all_versions(client, secret)
            labelled = {v: sorted(s) for v, s in listed.items() if s}
            if labelled != {v: sorted(s) for v, s in described.items()}:
                problems.append(f"{secret} via {node.name}: DescribeSecret and ListSecretVersionIds differ")
            views[node.name][secret] = listed
            current = client.get_secret_value(SecretId=secret)
            if CURRENT not in described.get(current["VersionId"], []):
                problems.append(f"{secret} via {node.name}: GetSecretValue read another AWSCURRENT")
        for token, (secret, value) in sorted(ledger.acknowledged.items()):
            got = client.get_secret_value(SecretId=secret, VersionId=token)
            if got.get("SecretString") != value:
                problems.append(f"acknowledged {token} of {secret} via {node.name}: wrong value")
        for token, (secret, values) in sorted(ledger.sent.items()):
            if token in ledger.acknowledged or token not in views[node.name][secret]:
                continue
            # Sent, never acknowledged (its answer was lost), yet stored: one of the values sent.
            got = client.get_secret_value(SecretId=secret, VersionId=token)
            if got.get("SecretString") not in values:
                problems.append(f"unacknowledged {token} of {secret}: a value never sent")
    first, *others = views.values() if views else [{}]
    problems += [f"nodes disagree on the versions of {s}" for o in others for s in o if o[s] != first[s]]
    for secret, listed in first.items():
        for token in listed:
            if token not in ledger.sent:
                problems.append(f"{secret} has a version {token} that nobody sent")
        for token, (owner, _) in ledger.acknowledged.items():
            if owner == secret and token not in listed:
                problems.append(f"acknowledged {token} of {secret} is not listed")
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
        problems += [f"{name}: AWSPREVIOUS {v} was never sent" for v in previous if v not in ledger.sent]
    return problems
