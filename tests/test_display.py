"""Display: EDID decoding (pure) and the DRM probe over a sysfs-shaped tree."""

import os

import pytest

from agent.checks.edid import decode_edid
from agent.checks.model import Status
from agent.config import Settings
from agent.errors import BadReply, DeviceNotFound
from agent.probes.display import check_display
from agent.sim.sysfs import Connector, add_connector, build_edid, set_connector


def settings_for(sysfs, **display):
    return Settings(
        site={"site_id": "t", "name": "t", "tier": "commune"},
        paths={"sysfs_root": str(sysfs)},
        display=display,
    )


def test_decode_literal_bytes_with_known_byte_order():
    # Written by hand from the VESA layout, independently of the simulator's builder:
    # 0x1E6D big-endian = 00111 10011 01101 = G S M (LG's PNP id); product 0x7765 stored
    # little-endian as 65 77; a 0xFC name descriptor at offset 72.
    block = bytearray(128)
    block[0:8] = bytes.fromhex("00ffffffffffff00")
    block[8:12] = bytes.fromhex("1e6d6577")
    block[12:16] = bytes.fromhex("01000000")
    block[16:20] = bytes.fromhex("06210103")
    block[72:90] = bytes.fromhex("000000fc004c4720554c545241474541520a")
    block[127] = (-sum(block)) % 256
    edid = decode_edid(bytes(block))
    assert edid.manufacturer == "GSM"
    assert edid.product_code == 0x7765
    assert edid.serial_number == 1
    assert edid.year == 2023
    assert edid.version == "1.3"
    assert edid.monitor_name == "LG ULTRAGEAR"
    assert edid.checksum_valid


def test_decode_built_edid_fields_and_byte_order():
    edid = decode_edid(build_edid(manufacturer="GSM", product_code=0x5B09, serial_number=0x1234))
    assert edid.manufacturer == "GSM"
    assert edid.product_code == 0x5B09
    assert edid.serial_number == 0x1234
    assert edid.monitor_name == "SAMSUNG"
    assert edid.checksum_valid


def test_corrupt_checksum_is_detected():
    assert not decode_edid(build_edid(corrupt_checksum=True)).checksum_valid


@pytest.mark.parametrize("data", [b"", b"\x00" * 127, b"\x11" * 128])
def test_not_an_edid_is_a_bad_reply(data):
    with pytest.raises(BadReply):
        decode_edid(data)


def test_sysfs_tree_is_shaped_like_the_kernel(sysfs):
    link = sysfs / "class" / "drm" / "card0-HDMI-A-1"
    assert link.is_symlink()
    assert "devices/pci0000:00" in os.path.realpath(link)
    assert (link / "status").read_text() == "connected\n"
    assert len((link / "edid").read_bytes()) == 128
    assert (sysfs / "class/leds/status:red/trigger").read_text().startswith("[none]")


def test_connected_display_is_ok(sysfs):
    outcome = check_display(settings_for(sysfs))
    assert outcome.status is Status.OK
    assert outcome.reason == "SAMSUNG on card0-HDMI-A-1, 1920x1080"
    assert outcome.metrics["manufacturer"] == "SAM"
    assert outcome.metrics["edid_checksum_valid"] is True


def test_unplugged_display_fails_with_hint(sysfs):
    set_connector(sysfs / "class/drm/card0-HDMI-A-1", Connector(status="disconnected", edid=b""))
    outcome = check_display(settings_for(sysfs))
    assert outcome.status is Status.FAIL
    assert "disconnected" in outcome.reason
    assert "HDMI cable" in outcome.hint


def test_named_connector_and_missing_connector(sysfs):
    outcome = check_display(settings_for(sysfs, connector="DP-1"))
    assert outcome.status is Status.FAIL
    with pytest.raises(DeviceNotFound, match="HDMI-A-9") as err:
        check_display(settings_for(sysfs, connector="HDMI-A-9"))
    assert "card0-DP-1" in err.value.hint


@pytest.mark.parametrize(
    ("conn", "fragment"),
    [
        (Connector(edid=b""), "no EDID"),
        (Connector(edid=build_edid(corrupt_checksum=True)), "EDID checksum invalid"),
        (Connector(enabled="disabled"), "not enabled"),
        (Connector(modes=["1024x768"]), "below 1280 px"),
    ],
)
def test_degraded_display_warns(sysfs, conn, fragment):
    set_connector(sysfs / "class/drm/card0-HDMI-A-1", conn)
    outcome = check_display(settings_for(sysfs))
    assert outcome.status is Status.WARN
    assert fragment in outcome.reason
    assert outcome.hint


def test_no_drm_at_all(tmp_path):
    with pytest.raises(DeviceNotFound, match="no DRM connector"):
        check_display(settings_for(tmp_path))


def test_second_card_is_found(sysfs):
    set_connector(sysfs / "class/drm/card0-HDMI-A-1", Connector(status="disconnected", edid=b""))
    add_connector(sysfs, Connector(name="HDMI-A-2", card=1))
    outcome = check_display(settings_for(sysfs))
    assert outcome.status is Status.OK
    assert "card1-HDMI-A-2" in outcome.reason
