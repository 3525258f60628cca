"""Ports for local clusters: free when picked, and outside the range the
kernel takes outgoing connections' ports from (cluster/launcher/ports.py)."""

import socket

import pytest

from cluster.launcher import ports


def _bindable(port):
  with socket.socket() as s:
    s.bind(("", port))
    s.listen()
  return True


def test_picked_ports_are_distinct_free_and_below_the_ephemeral_range():
  span = ports.ephemeral_range()
  if span is None:
    pytest.skip("this system does not say its ephemeral range (not Linux)")
  picked = ports.pick_ports(20)
  assert len(set(picked)) == 20
  assert all(ports.LOWEST <= p < span[0] for p in picked), (picked, span)
  assert all(_bindable(p) for p in picked)


def test_an_outgoing_connection_never_takes_a_picked_port():
  """What the range is for: the kernel gives outgoing connections ports
  from its ephemeral range only, so none of many lands on a picked port."""
  span = ports.ephemeral_range()
  if span is None:
    pytest.skip("this system does not say its ephemeral range (not Linux)")
  picked = set(ports.pick_ports(5))
  with socket.socket() as server:
    server.bind(("127.0.0.1", 0))
    server.listen(512)
    local_ports = set()
    for _ in range(200):
      with socket.create_connection(server.getsockname()) as client:
        local_ports.add(client.getsockname()[1])
        server.accept()[0].close()
  assert all(span[0] <= p <= span[1] for p in local_ports)
  assert not local_ports & picked


def test_without_the_range_portpicker_picks(tmp_path, monkeypatch):
  assert ports.ephemeral_range(str(tmp_path / "missing")) is None
  (tmp_path / "garbled").write_text("not ports\n")
  assert ports.ephemeral_range(str(tmp_path / "garbled")) is None
  monkeypatch.setattr(ports, "ephemeral_range", lambda: None)
  picked = ports.pick_ports(3)
  assert len(set(picked)) == 3 and all(_bindable(p) for p in picked)


def test_a_port_server_is_left_to_portpicker(monkeypatch):
  monkeypatch.setenv("PORTSERVER_ADDRESS", "@unused-in-this-test")
  asked = []
  monkeypatch.setattr(ports.portpicker, "pick_unused_port",
                      lambda: asked.append(1) or 20000 + len(asked))
  assert ports.pick_ports(2) == [20001, 20002]
