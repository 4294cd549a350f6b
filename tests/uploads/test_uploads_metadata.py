"""The completed-uploads table: a failed statement does not leave its transaction open."""

import pytest

from backendlab.topics.uploads.metadata import FileTable


def test_a_failed_statement_is_rolled_back_and_the_table_keeps_working(tmp_path):
    table = FileTable(f"sqlite:///{tmp_path / 'files.db'}", "upload_files_test")
    table.add("1", "alice", "uploads/alice/a.png", "a.png", 10, "image/png")
    with pytest.raises(Exception, match="UNIQUE"):
        table.add("2", "alice", "uploads/alice/a.png", "a.png", 10, "image/png")
    # left open, the failed INSERT's transaction would (on PostgreSQL) refuse every later statement
    assert not table.conn.in_transaction
    table.add("3", "bob", "uploads/bob/b.png", "b.png", 20, "image/png")
    assert table.count() == 2 and table.get("3")["owner"] == "bob"
    table.drop()
