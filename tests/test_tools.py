import pytest

from tools.seeds import summarise


def test_seed_summary_mean_and_std():
    table = summarise([dict(rank1=0.5, nauc=0.9), dict(rank1=0.7, nauc=0.8)])
    assert table["rank1"]["mean"] == pytest.approx(0.6)
    assert table["rank1"]["std"] == pytest.approx(0.1)
    assert table["nauc"]["values"] == [0.9, 0.8]
    assert "mAP" not in table


def test_seed_runner_end_to_end(tmp_path, monkeypatch, capsys):
    from tools import seeds
    monkeypatch.chdir(tmp_path)
    rc = seeds.main(["--seeds", "2", "--length", "4", "--batch_size", "128", "--pre_epochs", "0",
                     "--max_reid_epochs", "2", "--xla", "0", "--no_progress", "--save_flag", "0",
                     "--protocol", "retrieval"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "Over 2 seeds" in out and "mAP" in out
    assert list((tmp_path / "RN" / "demo" / "4").glob("seeds_retrieval_*.json"))
    assert seeds.main(["--seeds", "0"]) == 2
