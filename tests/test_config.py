"""backendlab.env switches services on; environment variables win over it."""

from backendlab import config


def test_file_values_found_from_a_subfolder(tmp_path, monkeypatch):
    (tmp_path / "backendlab.env").write_text("# comment\nREDIS_URL=redis://127.0.0.1:6379/0\n"
                                             "export DATABASE_URL='postgresql://u@h/db'\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.delenv("BACKENDLAB_CONFIG", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert config.get("REDIS_URL") == "redis://127.0.0.1:6379/0"
    assert config.get("DATABASE_URL") == "postgresql://u@h/db"
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:1/0")
    assert config.get("REDIS_URL") == "redis://elsewhere:1/0"


def test_no_file_means_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BACKENDLAB_CONFIG", str(tmp_path / "missing.env"))
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert config.get("KAFKA_BOOTSTRAP_SERVERS", "fallback") == "fallback"
