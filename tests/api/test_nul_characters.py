"""U+0000 in request text: JSON carries it and SQLite stores it, PostgreSQL text cannot.

A lookup by such a value finds nothing on either backend (no stored name, label or id can
hold it on PostgreSQL); storing it is refused on PostgreSQL with a clear client error rather
than an internal one."""

from __future__ import annotations

from tests.api.helpers import refusal

from strongroom.app import NUL_REFUSED


def _on_postgres(server) -> bool:
    return server.installation.store.engine.dialect.name == "postgresql"


def test_a_lookup_by_a_value_with_nul_finds_nothing(client):
    client.create_secret(Name="nul/lookup", SecretString="v")
    code, _ = refusal(client.get_secret_value, SecretId="nul/lookup", VersionStage="\x00")
    assert code == "ResourceNotFoundException"


def test_storing_nul_is_refused_only_where_it_cannot_be_stored(server, client):
    client.create_secret(Name="nul/store", SecretString="v")
    if _on_postgres(server):
        assert refusal(client.update_secret, SecretId="nul/store", Description="a\x00b") == (
            "InvalidParameterException",
            NUL_REFUSED,
        )
        assert "Description" not in client.describe_secret(SecretId="nul/store")
    else:
        client.update_secret(SecretId="nul/store", Description="a\x00b")
        assert client.describe_secret(SecretId="nul/store")["Description"] == "a\x00b"
    # The value itself is sealed, so any text is fine on both.
    client.put_secret_value(SecretId="nul/store", SecretString="x\x00y")
    assert client.get_secret_value(SecretId="nul/store")["SecretString"] == "x\x00y"
