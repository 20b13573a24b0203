from till_common.logging import REDACTED, accept_request_id, redact


def test_credentials_are_redacted_by_key_and_by_shape() -> None:
    event = {"authorization": "Bearer abc", "note": "sent Bearer eyJhbGciOi.x.y here",
             "pat": "till_pat_abcdef", "nested": {"client_secret": "s3", "ok": 1}, "token_type": "Bearer"}
    out = redact(event)
    assert out["authorization"] == REDACTED
    assert "eyJ" not in out["note"]
    assert out["pat"] == REDACTED
    assert out["nested"] == {"client_secret": REDACTED, "ok": 1}
    assert out["token_type"] == "Bearer"


def test_incoming_request_id_kept_only_when_well_formed() -> None:
    assert accept_request_id("abc-123") == "abc-123"
    replaced = accept_request_id("bad id\r\nX-Injected: 1")
    assert replaced != "bad id\r\nX-Injected: 1"
    assert len(replaced) == 16
