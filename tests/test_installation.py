"""Opening an installation: what the first start creates, and what a later start refuses."""

import pytest

from strongroom.installation import WrongMasterKey, open_installation
from strongroom.settings import Settings


def test_a_start_with_another_master_key_file_is_refused_with_a_clear_message(tmp_path):
    data = tmp_path / "data"
    open_installation(Settings(data_dir=data), {}).close()
    other_key = tmp_path / "other.key"
    with pytest.raises(WrongMasterKey, match=r"other\.key cannot open this database"):
        open_installation(Settings(data_dir=data, master_key_file=other_key), {})


def test_a_restart_with_the_same_key_file_opens_the_same_account(tmp_path):
    first = open_installation(Settings(data_dir=tmp_path), {})
    first.close()
    again = open_installation(Settings(data_dir=tmp_path), {})
    again.close()
    assert again.account_id == first.account_id
    assert first.new_root_credentials is not None
    assert again.new_root_credentials is None
