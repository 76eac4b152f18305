"""Every action in botocore's Secrets Manager model is served or listed with a reason."""

import botocore.session

from strongroom.operations.registry import NOT_YET, OPERATIONS


def test_every_modelled_action_is_served_or_explained():
    model = botocore.session.get_session().get_service_model("secretsmanager")
    modelled = set(model.operation_names)
    assert set(OPERATIONS) | set(NOT_YET) == modelled
    assert not set(OPERATIONS) & set(NOT_YET)
    assert all(reason.strip() for reason in NOT_YET.values())
