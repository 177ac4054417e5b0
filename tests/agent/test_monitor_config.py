"""MONITOR_CONFIGURATION: OpenNebula's shape when built, what its IM driver sends when parsed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from onemon.agent.config import Periods
from onemon.agent.monitor_config import (
    MAX_CONFIG_BYTES,
    MonitorConfigError,
    MonitorConfiguration,
    build,
    parse,
)

PUBKEY = (
    "-----BEGIN RSA PUBLIC KEY-----\n"
    "MIIBCgKCAQEAwSWE4ulJ1yyM9pMxvb0lU1hdVrXBqX9yJd5ZNoNbDQ2RgZj+nVtt\n"
    "-----END RSA PUBLIC KEY-----\n"
)

# What onemonitord renders (sorted, CDATA, every monitord.conf key, IM_MAD repeated) with the
# driver's HOST_ID appended; PROBES_PERIOD lacks EXEC_VM as after a 7.0 -> 7.2 upgrade (#7659).
OPENNEBULA_SAMPLE = (
    "<MONITOR_CONFIGURATION>"
    "<DATASTORE_LOCATION><![CDATA[/var/lib/one//datastores]]></DATASTORE_LOCATION>"
    "<DB><CONNECTIONS><![CDATA[15]]></CONNECTIONS></DB>"
    "<HOST_MONITORING_EXPIRATION_TIME><![CDATA[43200]]></HOST_MONITORING_EXPIRATION_TIME>"
    "<IM_MAD><ARGUMENTS><![CDATA[-r 3 -t 15 -w 90 kvm]]></ARGUMENTS>"
    "<EXECUTABLE><![CDATA[one_im_ssh]]></EXECUTABLE><NAME><![CDATA[kvm]]></NAME>"
    "<SUNSTONE_NAME><![CDATA[KVM]]></SUNSTONE_NAME><THREADS><![CDATA[0]]></THREADS></IM_MAD>"
    "<IM_MAD><ARGUMENTS><![CDATA[-r 3 -t 15 -w 90 lxc]]></ARGUMENTS>"
    "<EXECUTABLE><![CDATA[one_im_ssh]]></EXECUTABLE><NAME><![CDATA[lxc]]></NAME></IM_MAD>"
    "<LOG><DEBUG_LEVEL><![CDATA[3]]></DEBUG_LEVEL><SYSTEM><![CDATA[FILE]]></SYSTEM></LOG>"
    "<MANAGER_TIMER><![CDATA[15]]></MANAGER_TIMER>"
    "<MONITORING_INTERVAL_HOST><![CDATA[180]]></MONITORING_INTERVAL_HOST>"
    "<NETWORK><ADDRESS><![CDATA[::]]></ADDRESS>"
    "<MONITOR_ADDRESS><![CDATA[192.0.2.10]]></MONITOR_ADDRESS>"
    "<PORT><![CDATA[4124]]></PORT>"
    f"<PRIKEY><![CDATA[/etc/one/onemonitor]]></PRIKEY><PUBKEY><![CDATA[{PUBKEY}]]></PUBKEY>"
    "<THREADS><![CDATA[8]]></THREADS></NETWORK>"
    "<PROBES_PERIOD><BEACON_HOST><![CDATA[30]]></BEACON_HOST>"
    "<MONITOR_HOST><![CDATA[120]]></MONITOR_HOST><MONITOR_VM><![CDATA[30]]></MONITOR_VM>"
    "<STATE_VM><![CDATA[5]]></STATE_VM><SYNC_STATE_VM><![CDATA[180]]></SYNC_STATE_VM>"
    "<SYSTEM_HOST><![CDATA[600]]></SYSTEM_HOST></PROBES_PERIOD>"
    "<VM_MONITORING_EXPIRATION_TIME><![CDATA[43200]]></VM_MONITORING_EXPIRATION_TIME>"
    "<HOST_ID>42</HOST_ID>"
    "</MONITOR_CONFIGURATION>"
).encode()


def test_parse_opennebula_sample() -> None:
    assert parse(OPENNEBULA_SAMPLE) == MonitorConfiguration(
        host_id=42,
        monitor_address="192.0.2.10",
        port=4124,
        pubkey=PUBKEY,
        address="::",
        datastore_location="/var/lib/one//datastores",
        periods=Periods(
            beacon_host=30,
            system_host=600,
            monitor_host=120,
            state_vm=5,
            exec_vm=5,
            monitor_vm=30,
            sync_state_vm=180,
        ),
    )


def test_build_has_opennebulas_shape() -> None:
    raw = build(7, monitor_address="10.0.0.1", pubkey=PUBKEY)
    xml = raw.decode()
    root = ET.fromstring(raw)
    assert [e.tag for e in root] == ["DATASTORE_LOCATION", "NETWORK", "PROBES_PERIOD", "HOST_ID"]
    network, periods = root.find("NETWORK"), root.find("PROBES_PERIOD")
    assert network is not None and periods is not None
    assert [e.tag for e in network] == [
        "ADDRESS", "MONITOR_ADDRESS", "PORT", "PUBKEY",
    ]  # fmt: skip
    assert [(e.tag, e.text) for e in periods] == [
        ("BEACON_HOST", "30"), ("EXEC_VM", "5"), ("MONITOR_HOST", "120"), ("MONITOR_VM", "30"),
        ("STATE_VM", "5"), ("SYNC_STATE_VM", "180"), ("SYSTEM_HOST", "600"),
    ]  # fmt: skip
    assert xml.count("<![CDATA[") == 1 + 4 + 7  # every value but the driver's HOST_ID
    assert f"<PUBKEY><![CDATA[{PUBKEY}]]></PUBKEY>" in xml
    assert xml.endswith("<HOST_ID>7</HOST_ID></MONITOR_CONFIGURATION>")
    assert "\n<" not in xml.replace(PUBKEY, "")  # one line, as REXML writes it


@pytest.mark.parametrize(
    "fields",
    [
        {"host_id": 0},
        {
            "host_id": 12345,
            "monitor_address": "auto",
            "port": 14124,
            "pubkey": PUBKEY,
            "address": "::",
            "datastore_location": "/srv/one & <ds>/]]>odd",
            "periods": Periods(beacon_host=15, system_host=300.5, state_vm=1),
        },
    ],
)
def test_build_parse_round_trip(fields: dict[str, object]) -> None:
    assert parse(build(**fields)) == MonitorConfiguration(**fields)  # type: ignore[arg-type]


def test_missing_period_keys_take_their_defaults() -> None:
    xml = b"<MONITOR_CONFIGURATION><HOST_ID>1</HOST_ID></MONITOR_CONFIGURATION>"
    assert parse(xml) == MonitorConfiguration(host_id=1)
    partial = (
        b"<MONITOR_CONFIGURATION><PROBES_PERIOD><SYSTEM_HOST><![CDATA[60]]></SYSTEM_HOST>"
        b"<EXEC_VM><![CDATA[]]></EXEC_VM></PROBES_PERIOD><HOST_ID>1</HOST_ID>"
        b"</MONITOR_CONFIGURATION>"
    )
    assert parse(partial).periods == Periods(system_host=60)


def test_state_vm_read_from_monitord_compiled_default_name() -> None:
    xml = (
        b"<MONITOR_CONFIGURATION><PROBES_PERIOD><STATUS_VM><![CDATA[10]]></STATUS_VM>"
        b"</PROBES_PERIOD><HOST_ID>1</HOST_ID></MONITOR_CONFIGURATION>"
    )
    assert parse(xml).periods.state_vm == 10


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<MONITOR_CONFIGURATION><HOST_ID>1</HOST_ID><X>&lol3;</X></MONITOR_CONFIGURATION>"""


@pytest.mark.parametrize(
    "xml",
    [
        BILLION_LAUGHS,
        BILLION_LAUGHS.decode()
        .replace('version="1.0"', 'version="1.0" encoding="UTF-16"')
        .encode("utf-16"),
        b'<!DOCTYPE MONITOR_CONFIGURATION SYSTEM "file:///etc/passwd">'
        b"<MONITOR_CONFIGURATION><HOST_ID>1</HOST_ID></MONITOR_CONFIGURATION>",
        b"<!DOCTYPE MONITOR_CONFIGURATION><MONITOR_CONFIGURATION/>",
    ],
    ids=["billion-laughs", "utf16-billion-laughs", "external-dtd", "bare-doctype"],
)
def test_dtds_are_refused(xml: bytes) -> None:
    with pytest.raises(MonitorConfigError, match="DTD"):
        parse(xml)


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"<MONITOR_CONFIGURATION><HOST_ID>1</HOST_ID>", "malformed XML"),
        (b"", "malformed XML"),
        (b"<MONITOR_CONFIGURATION>&lol;</MONITOR_CONFIGURATION>", "malformed XML"),
        (b"<MONITOR_CONFIGURATION>x</MONITOR_CONFIGURATION><more/>", "malformed XML"),
        (b"<TEMPLATE><HOST_ID>1</HOST_ID></TEMPLATE>", "not <MONITOR_CONFIGURATION>"),
        (b"<MONITOR_CONFIGURATION/>", "HOST_ID: missing"),
        (b"<MONITOR_CONFIGURATION><HOST_ID>-1</HOST_ID></MONITOR_CONFIGURATION>", "HOST_ID"),
        (b"<MONITOR_CONFIGURATION>" + b" " * MAX_CONFIG_BYTES, "limit"),
    ],
)
def test_bad_input_is_a_typed_error(xml: bytes, message: str) -> None:
    with pytest.raises(MonitorConfigError, match=message):
        parse(xml)


def test_every_problem_reported_at_once() -> None:
    xml = (
        b"<MONITOR_CONFIGURATION><NETWORK><PORT>70000</PORT></NETWORK><PROBES_PERIOD>"
        b"<BEACON_HOST>often</BEACON_HOST><MONITOR_VM>0</MONITOR_VM></PROBES_PERIOD>"
        b"</MONITOR_CONFIGURATION>"
    )
    with pytest.raises(MonitorConfigError) as caught:
        parse(xml)
    assert caught.value.problems == (
        "HOST_ID: missing",
        "NETWORK/PORT: 70000 is not a port number",
        "PROBES_PERIOD/BEACON_HOST: 'often' is not a number",
        "PROBES_PERIOD/MONITOR_VM: must be > 0, got 0",
    )


def test_build_refuses_what_xml_cannot_carry() -> None:
    with pytest.raises(ValueError, match="XML cannot carry"):
        build(1, datastore_location="/srv/\x00ds")
