"""The shortest path through the API: create, read, list, delete."""


def test_it_creates_and_reads_a_secret(client):
    created = client.create_secret(Name="app/db", SecretString="s3cr3t")
    got = client.get_secret_value(SecretId="app/db")
    assert got["SecretString"] == "s3cr3t"
    assert got["VersionId"] == created["VersionId"]
    assert got["VersionStages"] == ["AWSCURRENT"]
    assert got["ARN"] == created["ARN"]
