"""`edge-agent devices` over a sysfs-shaped tree."""

import json

from agent.cli import main
from agent.sim.sysfs import Connector, add_connector, build_edid


def test_devices_lists_screens_and_leds(sysfs, capsys):
    add_connector(sysfs, Connector(name="DP-2", edid=b"\x00" * 128))
    assert (
        main(["--config", "/nonexistent.toml", "devices", "--json", "--sysfs-root", str(sysfs)])
        == 0
    )
    inv = json.loads(capsys.readouterr().out)
    by_name = {d["connector"]: d for d in inv["display"]}
    assert by_name["card0-HDMI-A-1"]["monitor"] == "SAMSUNG"
    assert by_name["card0-HDMI-A-1"]["status"] == "connected"
    assert by_name["card0-DP-1"]["status"] == "disconnected"
    assert by_name["card0-DP-2"]["edid_error"] == "EDID header missing"
    assert [led["name"] for led in inv["leds"]] == ["status:green", "status:red"]
    assert set(inv) == {"video", "audio", "serial", "display", "leds"}


def test_devices_human_output(sysfs, capsys):
    add_connector(sysfs, Connector(name="HDMI-A-2", edid=build_edid(name="LG TV")))
    main(["devices", "--sysfs-root", str(sysfs)])
    out = capsys.readouterr().out
    assert "connector=card0-HDMI-A-2  status=connected  monitor=LG TV" in out
