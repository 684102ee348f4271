"""pouch accredit, credentials and revoke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pouch.custody import Credential, Revocation, Scope

from .conftest import pouch


@pytest.fixture
def homes(tmp_path: Path) -> dict[str, Path]:
    """Kim, his envoy Kim Yong-chol, and Trump: Kim knows both cards."""
    names = {"kim": "Kim Jong-un", "chol": "Kim Yong-chol", "trump": "Donald J. Trump"}
    for who, name in names.items():
        assert pouch("init", "--name", name, "--no-passphrase", "--home", tmp_path / who).code == 0
        pouch("card", "-o", tmp_path / f"{who}.card", "--home", tmp_path / who)
    for other in ("chol", "trump"):
        r = pouch("contacts", "add", tmp_path / f"{other}.card", "--verified",
                  "--home", tmp_path / "kim")  # fmt: skip
        assert r.code == 0, r.err
    return {who: tmp_path / who for who in names}


def test_accredit_list_and_revoke(homes: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "chol.credential"
    r = pouch("accredit", "Kim Yong-chol", "--role", "envoy", "--for", "Donald J. Trump",
              "--from", "2018-05-29", "--until", "2018-06-28", "-o", out,
              "--home", homes["kim"])  # fmt: skip
    assert r.code == 0, r.err
    credential = Credential.from_bytes(out.read_bytes().strip())
    scope = Scope.from_bytes((tmp_path / "chol.credential.scope").read_bytes().strip())
    trump = json.loads(pouch("contacts", "list", "--json", "--home", homes["kim"]).out)
    trump_fp = next(c["fingerprint"] for c in trump if c["name"] == "Donald J. Trump")
    assert credential.allows(scope, trump_fp)
    assert trump_fp not in out.read_text()  # the trailer copy names no recipient
    assert (credential.role, credential.valid_from, credential.until) == (
        "envoy",
        "2018-05-29T00:00:00Z",
        "2018-06-28T00:00:00Z",
    )

    listed = json.loads(pouch("credentials", "list", "--json", "--home", homes["kim"]).out)
    assert [(c["id"], c["scope"], c["state"]) for c in listed] == [
        (credential.id, [trump_fp], "expired")
    ]
    # The envoy keeps his own copy.
    r = pouch("credentials", "add", out, "--home", homes["chol"])
    assert r.code == 0, r.err
    r = pouch("revoke", credential.id[:8], "--home", homes["chol"])
    assert r.code == 2 and "only its issuer" in r.err

    revocation_file = tmp_path / "revocation"
    r = pouch("revoke", credential.id[:12], "-o", revocation_file, "--home", homes["kim"])
    assert r.code == 0, r.err
    assert Revocation.from_bytes(revocation_file.read_bytes().strip()).revokes(credential)
    listed = json.loads(pouch("credentials", "list", "--json", "--home", homes["kim"]).out)
    assert listed[0]["state"].startswith("revoked on ")
    text = pouch("credentials", "list", "--home", homes["chol"]).out.decode()
    assert "as far as this register knows" in text or "expired" in text


def test_credentials_are_short_lived_and_never_self_issued(
    homes: dict[str, Path], tmp_path: Path
) -> None:
    r = pouch("accredit", "Kim Yong-chol", "--role", "envoy", "--until", "2099-01-01",
              "--home", homes["kim"])  # fmt: skip
    assert r.code == 2 and "needs --long" in r.err
    r = pouch("accredit", "Kim Yong-chol", "--role", "receiver", "--home", homes["kim"])
    assert r.code == 0, r.err
    listed = json.loads(pouch("credentials", "list", "--json", "--home", homes["kim"]).out)
    assert listed[0]["state"] == "valid, not revoked as far as this register knows"
    r = pouch("accredit", tmp_path / "kim.card", "--role", "envoy", "--home", homes["kim"])
    assert r.code == 11 and "self-issued" in r.err
    r = pouch("accredit", "Kim Yong-chol", "--role", "envoy", "--from", "29 May",
              "--home", homes["kim"])  # fmt: skip
    assert r.code == 2 and "not a date" in r.err
