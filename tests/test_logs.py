import json
import logging

from api.logs import JsonFormatter


def test_every_answer_has_a_request_id_and_one_json_log_line(client, stint_team, caplog):
    t = stint_team
    caplog.set_level(logging.INFO, logger="fieldbook.access")
    secret = t["researcher"].token
    r = client.get(
        f"/api/stints/{t['stint']['id']}", headers={**t["researcher"].headers, "X-Request-ID": "phone-42"}
    )
    assert r.headers["X-Request-ID"] == "phone-42"
    fresh = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert fresh.headers["X-Request-ID"] != "bad id with spaces" and len(fresh.headers["X-Request-ID"]) == 32
    records = [rec for rec in caplog.records if rec.name == "fieldbook.access"]
    lines = [json.loads(JsonFormatter().format(rec)) for rec in records]
    mine = next(line for line in lines if line["request_id"] == "phone-42")
    assert mine["route"] == "/api/stints/{stint_id}" and mine["status"] == 200 and mine["method"] == "GET"
    text = "\n".join(JsonFormatter().format(rec) for rec in records)
    assert secret not in text and t["stint"]["id"] not in text
